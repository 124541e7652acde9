"""Decode the 8-bit, non-interlaced PNGs that Forge and gradio write (PIL), to compare pixels exactly.

PNG files of the same pixels can differ in their bytes (metadata, compression), so images are compared by
their decoded RGB values. Only what those writers produce is supported; anything else raises.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}   # grey, RGB, grey+alpha, RGBA


@dataclasses.dataclass(frozen=True)
class Image:
    width: int
    height: int
    rgb: bytes          # width * height * 3

    def crop(self, x: int, y: int, width: int, height: int) -> "Image":
        rows = [self.rgb[((y + r) * self.width + x) * 3: ((y + r) * self.width + x + width) * 3] for r in range(height)]
        return Image(width, height, b"".join(rows))

    def differing_fraction(self, other: "Image") -> float:
        assert (self.width, self.height) == (other.width, other.height), "sizes differ"
        pixels = self.width * self.height
        return sum(self.rgb[i * 3: i * 3 + 3] != other.rgb[i * 3: i * 3 + 3] for i in range(pixels)) / pixels


def decode(data: bytes) -> Image:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos: pos + 4]), data[pos + 4: pos + 8]
        body = data[pos + 8: pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = zlib.decompress(b"".join(idat))
    rows, previous = [], bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1: (r + 1) * (stride + 1)])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = line
    pixels = b"".join(rows)
    if channels == 3:
        return Image(width, height, pixels)
    grey = channels <= 2
    rgb = bytearray()
    for i in range(0, len(pixels), channels):
        rgb += bytes([pixels[i]] * 3) if grey else pixels[i: i + 3]
    return Image(width, height, bytes(rgb))


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        upper_left = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - upper_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upper_left)) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter type {kind}")
