"""Reading ``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` straight from their CDR bytes,
and writing the node's outputs (:class:`CdrWriter`) without building rclpy messages first.

A subscription created with ``raw=True`` hands the node the serialized message (``bytes``) instead
of a Python message object. Deserializing a 1280x720 image into an rclpy message copies its
2.7 MB of pixels into an ``array.array`` (and the node then copied and converted them again);
parsing the few header fields here instead leaves the pixels where DDS put them, so the core gets
a zero-copy, read-only numpy view of them.

The layout is OMG CDR (XCDR1) as rmw_fastrtps and rmw_cyclonedds write it: a 4-byte
encapsulation header (``00 01`` little-endian, ``00 00`` big-endian, then two option bytes),
then the fields in declaration order, each primitive aligned to its own size counted from the
end of the encapsulation header; a string is a ``uint32`` length that includes the terminating
NUL, then the bytes; a ``uint8[]`` is a ``uint32`` count, then the bytes. ROS-free: the
functions take ``bytes`` (or any buffer) and return plain values; a buffer that does not hold a
whole message is refused with a one-line :class:`~gapcam.errors.ImageDecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from gapcam.errors import ImageDecodeError
from gapcam.stamps import to_ns

_ENCAPSULATION = 4  #: bytes before the first field; alignment counts from here


@dataclass(frozen=True)
class CdrHeader:
    """``std_msgs/Header`` values."""

    sec: int
    nanosec: int
    frame_id: str

    @property
    def stamp_ns(self) -> int:
        return to_ns(self.sec, self.nanosec)


@dataclass(frozen=True)
class CdrImage:
    """The fields of a ``sensor_msgs/Image``; ``data`` is a read-only view into the buffer."""

    header: CdrHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  #: ``uint8`` view of the pixel bytes (no copy)


@dataclass(frozen=True)
class CdrCompressedImage:
    """The fields of a ``sensor_msgs/CompressedImage``; ``data`` is a read-only view."""

    header: CdrHeader
    format: str
    data: np.ndarray  #: ``uint8`` view of the compressed bytes (no copy)


class _Reader:
    """Sequential CDR reader over one buffer (alignment relative to the encapsulation end)."""

    def __init__(self, buf: bytes | bytearray | memoryview, what: str) -> None:
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
        self.what = what
        if len(self.buf) < _ENCAPSULATION:
            raise self.error(f"{len(self.buf)} bytes, shorter than the CDR encapsulation header")
        kind = bytes(self.buf[:2])
        if kind == b"\x00\x01":
            self.u32 = struct.Struct("<I")
            self.i32 = struct.Struct("<i")
        elif kind == b"\x00\x00":
            self.u32 = struct.Struct(">I")
            self.i32 = struct.Struct(">i")
        else:
            raise self.error(
                f"unknown CDR encapsulation {kind.hex()} (expected 0001 or 0000: plain CDR)"
            )
        self.pos = _ENCAPSULATION

    def error(self, problem: str) -> ImageDecodeError:
        return ImageDecodeError(
            f"{self.what}: malformed serialized message ({problem}); "
            "check the publisher's message type and middleware"
        )

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise self.error(
                f"needs {self.pos + n} bytes at least, the buffer holds {len(self.buf)}"
            )

    def _align(self, n: int) -> None:
        self.pos += -(self.pos - _ENCAPSULATION) % n

    def uint32(self) -> int:
        self._align(4)
        self._need(4)
        (v,) = self.u32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def int32(self) -> int:
        self._align(4)
        self._need(4)
        (v,) = self.i32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def uint8(self) -> int:
        self._need(1)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def string(self) -> str:
        n = self.uint32()
        if n == 0:  # some writers send an empty string as length 0
            return ""
        self._need(n)
        raw = bytes(self.buf[self.pos : self.pos + n - 1])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("a string field is not UTF-8") from None

    def byte_sequence(self) -> np.ndarray:
        n = self.uint32()
        self._need(n)
        view = np.frombuffer(self.buf, dtype=np.uint8, count=n, offset=self.pos)
        self.pos += n
        return view

    def header(self) -> CdrHeader:
        sec = self.int32()
        nanosec = self.uint32()
        return CdrHeader(sec, nanosec, self.string())


def parse_header(buf: bytes | bytearray | memoryview, what: str = "message") -> CdrHeader:
    """The ``std_msgs/Header`` that starts a serialized message (Image, CompressedImage, ...)."""
    return _Reader(buf, what).header()


def parse_image(buf: bytes | bytearray | memoryview) -> CdrImage:
    """Fields of a serialized ``sensor_msgs/Image``; the pixel bytes are not copied."""
    r = _Reader(buf, "sensor_msgs/Image")
    header = r.header()
    height = r.uint32()
    width = r.uint32()
    encoding = r.string()
    is_bigendian = r.uint8()
    step = r.uint32()
    data = r.byte_sequence()
    return CdrImage(header, height, width, encoding, is_bigendian, step, data)


def parse_compressed_image(buf: bytes | bytearray | memoryview) -> CdrCompressedImage:
    """Fields of a serialized ``sensor_msgs/CompressedImage``; the data bytes are not copied."""
    r = _Reader(buf, "sensor_msgs/CompressedImage")
    header = r.header()
    fmt = r.string()
    return CdrCompressedImage(header, fmt, r.byte_sequence())


# ---- writing: the node's outputs, serialized once ------------------------------------------------


class CdrWriter:
    """Little-endian plain CDR (XCDR1), field by field in declaration order, as rmw_fastrtps
    writes it; for ``Publisher.publish(bytes)``. The caller knows the message's layout (the
    node's ``convert`` module), this class only the encoding of each kind of field."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\x00\x01\x00\x00")  # little-endian plain CDR, no options

    def _align(self, n: int) -> None:
        self.buf += b"\x00" * (-(len(self.buf) - _ENCAPSULATION) % n)

    def uint32(self, v: int) -> None:
        self._align(4)
        self.buf += struct.pack("<I", v)

    def int32(self, v: int) -> None:
        self._align(4)
        self.buf += struct.pack("<i", v)

    def uint16(self, v: int) -> None:
        self._align(2)
        self.buf += struct.pack("<H", v)

    def uint8(self, v: int) -> None:
        self.buf.append(v)

    def boolean(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def float32(self, v: float) -> None:
        self._align(4)
        self.buf += struct.pack("<f", v)

    def string(self, s: str) -> None:
        raw = s.encode("utf-8") + b"\x00"
        self.uint32(len(raw))
        self.buf += raw

    def strings(self, values: list[str]) -> None:
        """A ``string[]``: the count, then each string."""
        self.uint32(len(values))
        for v in values:
            self.string(v)

    def float32s(self, values: list[float]) -> None:
        """A ``float32[]``: the count, then the values."""
        self.uint32(len(values))
        self.buf += struct.pack(f"<{len(values)}f", *values)

    def done(self) -> bytes:
        """The message as written."""
        return bytes(self.buf)

    def header(self, header: CdrHeader) -> None:
        self.int32(header.sec)
        self.uint32(header.nanosec)
        self.string(header.frame_id)

    def with_bytes(self, data: np.ndarray | bytes) -> bytes:
        """The message: what was written, the sequence's length, then ``data`` (one copy)."""
        view = memoryview(np.ascontiguousarray(data)).cast("B")
        self.uint32(len(view))
        return b"".join((self.buf, view))


def serialize_image(header: CdrHeader, encoding: str, image: np.ndarray) -> bytes:
    """A ``sensor_msgs/Image`` of a ``uint8`` ``(H, W)`` or ``(H, W, C)`` array, serialized as
    rmw_fastrtps would serialize the message (little-endian CDR), for ``Publisher.publish(bytes)``.

    Why: building the rclpy message first copies the pixels into an ``array.array``, then rclpy
    converts and serializes them again; this writes the few header fields and copies the pixels
    once (README "Performance").
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W[, C]) image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    w = CdrWriter()
    w.header(header)
    w.uint32(height)
    w.uint32(width)
    w.string(encoding)
    w.uint8(0)  # is_bigendian
    w.uint32(image[0].nbytes)  # step: the rows are written contiguous
    return w.with_bytes(image)


def serialize_compressed_image(header: CdrHeader, fmt: str, data: np.ndarray | bytes) -> bytes:
    """A ``sensor_msgs/CompressedImage`` serialized, as :func:`serialize_image`."""
    w = CdrWriter()
    w.header(header)
    w.string(fmt)
    return w.with_bytes(np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data)
