"""Keep a README screenshot small: a PNG palette first (UI text stays sharp), a smaller scale only if needed.

Pillow is not a test dependency; Forge's own Python has it (Forge needs it), so without Pillow here this
file runs itself there:  <forge python> picture.py PATH LIMIT_BYTES
"""

from __future__ import annotations

import os
import subprocess
import sys

COLOURS = (256, 128, 64)
SMALLEST_SCALE = 0.6   # below this the labels stop being readable: fail instead


def shrink(path: str, limit: int, python: str | None = None) -> int:
    """Rewrite the PNG at `path` as at most `limit` bytes; returns its size. Raises if it cannot."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        if not python:
            raise RuntimeError("making README pictures needs Pillow (here, or in Forge's Python)") from None
        subprocess.run([python, os.path.abspath(__file__), path, str(limit)], check=True)
        return os.path.getsize(path)
    return _shrink(path, limit)


def _shrink(path: str, limit: int) -> int:
    from PIL import Image

    with Image.open(path) as opened:
        original = opened.convert("RGB")
    scale = 1.0
    while scale >= SMALLEST_SCALE:
        image = original if scale == 1.0 else original.resize(
            (round(original.width * scale), round(original.height * scale)), Image.Resampling.LANCZOS)
        for colours in COLOURS:
            image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                path, optimize=True)
            if os.path.getsize(path) <= limit:
                return os.path.getsize(path)
        scale = round(scale - 0.1, 2)
    raise RuntimeError(f"{path}: still over {limit} bytes at scale {SMALLEST_SCALE}; picture a smaller area")


if __name__ == "__main__":
    print(_shrink(sys.argv[1], int(sys.argv[2])))
