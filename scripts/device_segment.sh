#!/usr/bin/env bash
# One training segment (< 10 minutes) on the lent GPU machine; see ../shared/GPU.md and README "Training on a GPU".
# Run through the device tool from the repository root, e.g.
#   run(command="bash scripts/device_segment.sh", carry=[".device-data/part-000.tar"])
# Every call unpacks whatever data chunk it carries, then (once all chunks are there, or DATA_READY=1) trains for
# MINUTES (default 8) from /root/runs (kept while the machine stays warm) or, on a fresh machine, from the
# committed compact state, and returns the EMA weights and the compact state through $OUT.
set -euo pipefail
CONFIG=${CONFIG:-configs/deepfill_v2_gpu256.json}
MODEL=${MODEL:-deepfill_v2}
MINUTES=${MINUTES:-8}
mkdir -p /root/data/train
for t in .device-data/part-*.tar; do
  [ -e "$t" ] && tar -xf "$t" -C /root/data/train && echo "unpacked $t"
done
n=$(ls /root/data/train | wc -l)
echo "$n images in /root/data/train"
if [ "${TRAIN:-1}" = 0 ]; then exit 0; fi
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python -m facefill train --config "$CONFIG" --resume --set max_minutes="$MINUTES" ${EXTRA:-}
mkdir -p "$OUT/weights" "$OUT/state"
python -m facefill export "/root/runs/$MODEL" -o "$OUT/weights/$MODEL" --state "$OUT/state/$MODEL"
tail -n 3 "/root/runs/$MODEL/log.jsonl" || true
cp "/root/runs/$MODEL/log.jsonl" "$OUT/log.jsonl" 2>/dev/null || true
ls -la "$OUT"/*/*
