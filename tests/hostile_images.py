"""Hostile encoded images, made in a few bytes by the tests that need them (no files in git).

The cases a tester sent to the node, to ``gapcam predict`` and through bags: decompression bombs
(a header claiming far more pixels than the data holds), a PNG past OpenCV's own 2^30-pixel
limit, and JPEGs whose damage libjpeg only *warns* about (a flipped bit that forms a marker in
the entropy data, spliced data, data cut short and closed with an end marker).
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def scene_jpeg(seed: int = 7, size: tuple[int, int] = (320, 240), quality: int = 85) -> bytes:
    """A real camera-like frame (the synthetic scene renderer) as JPEG."""
    from gapcam.synth import render_scene

    image = render_scene(seed, size=size, side="left", label="blocked")[0]
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 16x16 JPEG whose frame header (SOF0) is patched to claim ``width`` x ``height``.

    About 630 bytes: libjpeg would allocate the claimed frame and fill it with grey.
    """
    ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, *, depth: int = 8, colour: int = 2, idat: bytes) -> bytes:
    """A PNG with an honest IHDR for ``width`` x ``height`` and the given IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """An RGB PNG of the claimed size whose first rows really are in the data (a few kB)."""
    rows = b"".join(b"\x00" + bytes(3 * width) for _ in range(64))
    return png_claiming(width, height, idat=zlib.compress(rows, 9))


def png_over_opencv_limit() -> bytes:
    """A 1-bit PNG claiming 40000x40000 (1.6 G pixels > OpenCV's 2^30) with data enough to be
    plausible for that size (deflate cannot compress more than 1032:1), so that only OpenCV's own
    check stops it when ``max_pixels`` is raised."""
    return png_claiming(40000, 40000, depth=1, colour=0, idat=bytes(200_000))


def truncated_with_eoi(jpeg: bytes) -> bytes:
    """The first half of a JPEG closed with an end-of-image marker (libjpeg only warns)."""
    return jpeg[: len(jpeg) // 2] + b"\xff\xd9"


def spliced(jpeg: bytes) -> bytes:
    """The first half of a JPEG followed by data from its middle (two frames run together)."""
    return jpeg[: len(jpeg) // 2] + jpeg[len(jpeg) // 3 :]


def bit_flipped(jpeg: bytes) -> bytes:
    """One flipped bit in the entropy-coded data that turns a byte into a marker (0xFF + code).

    JPEG has no checksum: most flips decode silently into other pixels, which no decoder can
    tell from a real image. A flip that makes a marker is one libjpeg notices (it warns
    "premature end of data segment" and fills the rest with grey), so this is the case that
    must be refused.
    """
    data = bytearray(jpeg)
    start = jpeg.find(b"\xff\xda") + 20  # past the scan header
    for pos in range(start, len(data) - 3):
        byte, nxt = data[pos], data[pos + 1]
        missing = 0xFF ^ byte
        if byte != 0xFF and missing & (missing - 1) == 0 and nxt not in (0x00, 0xFF):
            if data[pos - 1] == 0xFF:  # would merge with a stuffed 0xFF before it
                continue
            data[pos] = 0xFF
            return bytes(data)
    raise AssertionError("no byte one bit away from 0xFF in the entropy data")


def corrupt_jpegs(jpeg: bytes) -> dict[str, bytes]:
    """The three kinds of corrupt JPEG that libjpeg decodes with only a warning."""
    return {
        "bit_flip": bit_flipped(jpeg),
        "spliced": spliced(jpeg),
        "truncated_eoi": truncated_with_eoi(jpeg),
    }


def hostile_images(size: tuple[int, int] = (320, 240)) -> dict[str, bytes]:
    """Every hostile case of the fuzz report (bombs, and corrupt frames of ``size``), by name."""
    jpeg = scene_jpeg(size=size)
    return {
        "jpeg_bomb_20000": jpeg_claiming(20000, 20000),
        "jpeg_bomb_8k": jpeg_claiming(7680, 4320),
        "png_bomb_20000": png_bomb(),
        "png_over_2_30": png_over_opencv_limit(),
        **corrupt_jpegs(jpeg),
    }
