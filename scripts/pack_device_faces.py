"""Pack the training faces at a model's resolution into tar chunks for the GPU machine (see ../shared/GPU.md).

The celeba256 crops are soft (upsampled from ~128 px), and the shipped deepfill_v2 trains at 128 px, so its GPU
runs need only the faces as training sees them: centre-cropped and box-filtered to RESOLUTION exactly as
``facefill.data.faces.load_face`` does, then JPEG (quality 92, no chroma subsampling: mean error ~1 grey level,
below the source JPEGs' own). At 128 px the 15,043 faces fit in 3 chunks instead of the 7 that the 256 px files
need, so a GPU session starts training four transfers earlier. The tars are gzipped (headers and padding vanish,
the JPEG data shrinks ~10 %), and a call's carry plus the project tree (~19 MB) must stay under 64 MiB: the
default 40 MiB gives chunks of 41.9, 41.9 and 8.4 MB, the last one light enough to travel with the VGG19 file.

    python scripts/pack_device_faces.py [--resolution 128] [--src ../shared/data/celeba256/train]
        [--out .device-data] [--chunk-mib 40]

writes OUT/train{RESOLUTION}-000.tar, ...; scripts/device_segment.sh unpacks them into /root/data/train{RESOLUTION}.
"""
from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image

from facefill.data.faces import DEFAULT_TRAIN_DIR, list_images, load_face


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--src", default=str(DEFAULT_TRAIN_DIR))
    parser.add_argument("--out", default=".device-data")
    parser.add_argument("--chunk-mib", type=float, default=40.0)
    parser.add_argument("--quality", type=int, default=92)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"train{args.resolution}"
    for old in out.glob(f"{prefix}-*.tar"):
        old.unlink()
    limit, part, tar, n = int(args.chunk_mib * 2**20), 0, None, 0
    for path in list_images(args.src):
        buf = io.BytesIO()
        Image.fromarray(load_face(path, args.resolution)).save(buf, "JPEG", quality=args.quality, subsampling=0)
        data = buf.getvalue()
        # bytes on disk so far (GzipFile's raw file; its small buffer is the margin) + this face, uncompressed
        if tar is None or tar.fileobj.fileobj.tell() + len(data) + 2**16 > limit:
            if tar is not None:
                tar.close()
                part += 1
            tar = tarfile.open(out / f"{prefix}-{part:03d}.tar", "w:gz")
        info = tarfile.TarInfo(f"{path.stem}.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        n += 1
    if tar is not None:
        tar.close()
    for t in sorted(out.glob(f"{prefix}-*.tar")):
        print(f"{t} {t.stat().st_size / 2**20:.1f} MiB")
    print(f"{n} faces at {args.resolution} px in {part + 1} chunk(s)")


if __name__ == "__main__":
    main()
