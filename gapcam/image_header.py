"""What an encoded image *claims* to be, read from its first bytes before anything is decoded.

A decoder allocates the full frame the header announces before it reads a single pixel, so a
629-byte JPEG that claims 20000x20000 pixels costs 1.2 GB and seconds of CPU while libjpeg fills
the missing data with grey. Reading the header ourselves (no allocation, microseconds) lets
:func:`gapcam.imageio.decode_image_bytes` refuse such a frame *before* OpenCV sees it: too many
pixels, or far fewer bytes than any encoder could squeeze that many pixels into.

Only the formats a camera or a user plausibly sends are recognised (JPEG, PNG, BMP, GIF, TIFF,
WebP, PNM). Anything else is refused rather than handed to whichever of OpenCV's many decoders
claims it: the fewer parsers hostile bytes reach, the better.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from gapcam.errors import ImageDecodeError

#: JPEG frame headers (SOFn) that carry the image size; SOF9-SOF15 are arithmetic-coded.
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_JPEG_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: Markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9
_NOT_FF = re.compile(b"[^\xff]")

#: Most scans a JPEG may have. Baseline files have 1-3, libjpeg's progressive ones ~10; each scan
#: revisits every block, so thousands of tiny scans make a CPU bomb (libjpeg-turbo's tools use a
#: limit of this kind too).
MAX_JPEG_SCANS = 100

#: deflate's best possible ratio (a 258-byte match in 2 bits): no PNG holds more pixel bytes
#: than this many times its file size.
_DEFLATE_MAX_RATIO = 1032

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type -> channels.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class ImageHeader:
    """The size an encoded image claims, and the least data a genuine image of that size needs."""

    format: str  #: "JPEG", "PNG", ...
    width: int
    height: int
    min_bytes: int = 0  #: fewer bytes than this: the data cannot hold the claimed pixels
    arithmetic: bool = False  #: JPEG with arithmetic coding (no data-size bound applies)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes | memoryview) -> ImageHeader:
    """Parse the size from ``data``'s header; :class:`ImageDecodeError` if it is not readable.

    ``data`` is the whole encoded image (JPEG headers may sit behind large EXIF/ICC segments,
    and the data-size bound needs the total length).
    """
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if head.startswith(_PNG_SIGNATURE):
        return _png(data)
    if head.startswith(b"BM"):
        return _bmp(data)
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _sized("GIF", *struct.unpack_from("<HH", _need(data, 10, "GIF"), 6))
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return _tiff(data)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp(data)
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"123456":
        return _pnm(data)
    raise ImageDecodeError(
        f"not a decodable image ({len(data)} bytes, starts {head[:8].hex(' ')}); "
        "expected JPEG or PNG data (also read: BMP, GIF, TIFF, WebP, PNM)"
    )


def _need(data: bytes | memoryview, n: int, fmt: str) -> bytes:
    if len(data) < n:
        raise ImageDecodeError(f"truncated {fmt} header ({len(data)} bytes)")
    return bytes(data[:n])


def _sized(fmt: str, width: int, height: int, **kw: int | bool) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{fmt} header claims an empty size {width}x{height}")
    return ImageHeader(fmt, int(width), int(height), **kw)  # type: ignore[arg-type]


def _jpeg(data: bytes | memoryview) -> ImageHeader:
    """Walk the marker segments up to the frame header (SOFn) and count the scans."""
    buf = bytes(data)
    n = len(buf)
    pos = 2
    while True:
        pos = buf.find(b"\xff", pos)  # junk between segments is skipped, as libjpeg does
        found = _NOT_FF.search(buf, pos) if pos >= 0 else None  # then any fill bytes
        pos = found.start() if found else n
        if pos + 3 > n:
            raise ImageDecodeError(f"truncated JPEG header ({n} bytes, no frame header)")
        marker = buf[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            raise ImageDecodeError("corrupt JPEG: image data before the frame header (SOF)")
        (length,) = struct.unpack_from(">H", buf, pos)
        if marker in _JPEG_SOF:
            if length < 8 or pos + 7 > n:
                raise ImageDecodeError("truncated JPEG frame header")
            height, width = struct.unpack_from(">HH", buf, pos + 3)
            if height == 0:
                raise ImageDecodeError(
                    "JPEG with its height defined after the image data (DNL) is not supported"
                )
            break
        pos += length
    arithmetic = marker in _JPEG_ARITHMETIC
    scans = buf.count(b"\xff\xda")  # entropy data stuffs 0xFF as FF00: only real markers
    if scans > MAX_JPEG_SCANS:
        raise ImageDecodeError(
            f"JPEG has {scans} scans (at most {MAX_JPEG_SCANS} accepted); "
            "no camera writes that many, it would take seconds to decode"
        )
    # Huffman coding spends >= 1 bit on the DC coefficient of each 8x8 block of the full-resolution
    # component: fewer bytes cannot be a complete image (libjpeg would invent the rest as grey).
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    return _sized(
        "JPEG", width, height, min_bytes=0 if arithmetic else blocks // 8, arithmetic=arithmetic
    )


def _png(data: bytes | memoryview) -> ImageHeader:
    head = _need(data, 33, "PNG")
    if head[12:16] != b"IHDR":
        raise ImageDecodeError("corrupt PNG: the first chunk is not IHDR")
    width, height, depth, colour = struct.unpack_from(">IIBB", head, 16)
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        raise ImageDecodeError(f"corrupt PNG: bit depth {depth}, colour type {colour}")
    pixel_bytes = width * height * channels * depth // 8
    return _sized("PNG", width, height, min_bytes=pixel_bytes // _DEFLATE_MAX_RATIO)


def _bmp(data: bytes | memoryview) -> ImageHeader:
    head = _need(data, 26, "BMP")
    (dib,) = struct.unpack_from("<I", head, 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", head, 18)
    else:
        width, height = struct.unpack_from("<ii", head, 18)
    return _sized("BMP", width, abs(height))


def _webp(data: bytes | memoryview) -> ImageHeader:
    head = _need(data, 30, "WebP")
    chunk = head[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack_from("<HH", head, 26)
        return _sized("WebP", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", head, 21)
        return _sized("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return _sized("WebP", w, h)
    raise ImageDecodeError(f"corrupt WebP: unknown first chunk {chunk!r}")


def _tiff(data: bytes | memoryview) -> ImageHeader:
    """Width and height from the first IFD (tags 256 and 257, SHORT or LONG)."""
    head = bytes(data[:8])
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", head, 4)
    mv = memoryview(data)
    if ifd + 2 > len(mv):
        raise ImageDecodeError("truncated TIFF header")
    (count,) = struct.unpack_from(order + "H", mv, ifd)
    size: dict[int, int] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(mv):
            raise ImageDecodeError("truncated TIFF header")
        tag, kind = struct.unpack_from(order + "HH", mv, entry)
        if tag in (256, 257):
            fmt = "H" if kind == 3 else "I"
            (size[tag],) = struct.unpack_from(order + fmt, mv, entry + 8)
    if 256 not in size or 257 not in size:
        raise ImageDecodeError("corrupt TIFF: no image width/length in the first directory")
    return _sized("TIFF", size[256], size[257])


def _pnm(data: bytes | memoryview) -> ImageHeader:
    """``P1``-``P6``: whitespace-separated magic, width, height; ``#`` starts a comment."""
    text = bytes(data[:1024])
    tokens: list[bytes] = []
    for line in text.split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 3:
            break
    try:
        width, height = int(tokens[1]), int(tokens[2])
    except (IndexError, ValueError):
        raise ImageDecodeError("corrupt PNM header (no width and height)") from None
    return _sized("PNM", width, height)
