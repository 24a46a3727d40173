#!/usr/bin/env bash
# Regenerate every measured part of the README from the shipped weights, in one go (about an hour on 2 CPU cores
# the first time; per-image evaluation scores are cached, so later runs recompute only changed models).
# Run it on a quiet machine (timings are reported) from the repository root, with the test extras installed.
#   STEPS="eval bench" bash scripts/refresh_results.sh     # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-"demo eval bench alignment guided editor"}
for step in $STEPS; do
  echo "== $step"
  case $step in
    demo)
      out=$(mktemp -d)
      facefill demo -o "$out"
      cp "$out/side_by_side.png" docs/demo.png ;;
    eval)
      facefill eval --model deepfill_v2 --model deepfill_v1 --model glcic --model hogface --model scfegan \
        --model telea --model navier_stokes --extra-limit 200 -o docs/eval --readme README.md ;;
    bench)
      facefill bench --model deepfill_v2 --model deepfill_v1 --model glcic --model hogface --model scfegan \
        --model telea --model navier_stokes --model biharmonic --model lama_reference --size 256 --batch 1,8 --readme README.md ;;
    alignment)
      python -m facefill.evaluation.alignment --model deepfill_v2 -o docs/alignment --readme README.md ;;
    guided)
      python -m facefill.evaluation.guided --model scfegan -o docs/scfegan --readme README.md ;;
    editor)  # needs playwright and Debian's chromium
      python scripts/editor_screenshot.py -o docs/editor.png ;;
    *)
      echo "unknown step $step (demo, eval, bench, alignment, guided, editor)" >&2; exit 2 ;;
  esac
done
