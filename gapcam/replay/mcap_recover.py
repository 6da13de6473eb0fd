"""Reading the complete messages of an mcap file whose end is missing (a recorder that crashed,
a disk that filled up, a copy cut short).

``rosbags`` (like ``ros2 bag``) needs the mcap footer and summary to open a file, so such a bag
is unreadable with them although almost all of its data is intact. This reader walks the data
section from the start - schema, channel and message records, inside chunks or not - and stops
at the first incomplete or inconsistent record. It offers the small part of the ``rosbags``
reader interface that replay uses (``connections``, ``topics``, ``messages``, ``close``).

Record layout (https://mcap.dev/spec): magic, then ``opcode u8, length u64, content``; strings
are ``u32 length + UTF-8``; chunks hold the same records, optionally zstd or lz4 compressed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from gapcam.replay.recovered import RecoveredTopics, recovered_connection

MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END, OP_FOOTER = (
    0x03,
    0x04,
    0x05,
    0x06,
    0x0F,
    0x02,
)
#: Records bigger than this are taken for garbage (a corrupt length field), not allocated.
MAX_RECORD = 1 << 31


class Truncated(Exception):
    """The data section ends in an incomplete or corrupt record."""


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise Truncated("string runs past its record")
    return bytes(buf[pos + 4 : end]).decode("utf-8"), end


def _decompress(kind: str, data: bytes, size: int) -> bytes:
    if kind == "":
        return data
    if kind == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.decompress(data)
    if kind == "lz4":
        from lz4.frame import decompress

        return decompress(data)
    raise Truncated(f"unknown chunk compression {kind!r}")


class McapScan:
    """Sequential walk over the records of a (possibly truncated) mcap file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.schemas: dict[int, tuple[str, str, str]] = {}  #: id -> (name, encoding, text)
        self.channels: dict[int, tuple[str, int]] = {}  #: id -> (topic, schema id)
        self.valid_bytes = 0  #: end offset of the last complete top-level record
        self.problem: str | None = None  #: why the walk stopped early (None: file complete)

    def records(self) -> Iterator[tuple[int, int, int, memoryview]]:
        """Yields (channel id, log time, publish time, data) of every complete message."""
        with self.path.open("rb") as f:
            if f.read(8) != MAGIC:
                self.problem = "not an mcap file (bad magic)"
                return
            self.valid_bytes = 8
            try:
                yield from self._walk(f)
            except Truncated as exc:
                self.problem = f"{exc} at byte {self.valid_bytes} of {self.size}"
            except (struct.error, UnicodeDecodeError, ValueError, OSError) as exc:
                self.problem = f"corrupt record at byte {self.valid_bytes} of {self.size} ({exc})"

    def _walk(self, f: BinaryIO) -> Iterator[tuple[int, int, int, memoryview]]:
        while True:
            head = f.read(9)
            if not head:
                raise Truncated("file ends without footer")
            if len(head) < 9:
                raise Truncated("record header cut short")
            op, length = struct.unpack("<BQ", head)
            if length > MAX_RECORD:
                raise Truncated(f"implausible record length {length}")
            if op in (OP_DATA_END, OP_FOOTER):
                return  # a complete data section: the summary after it is not needed
            content = f.read(length)
            if len(content) < length:
                raise Truncated("record cut short")
            if op == OP_CHUNK:
                items = list(self._chunk(memoryview(content)))
            else:
                items = list(self._record(op, memoryview(content)))
            self.valid_bytes = f.tell()
            yield from items

    def _chunk(self, buf: memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
        _start, _end, size, _crc = struct.unpack_from("<QQQI", buf, 0)
        kind, pos = _string(buf, 28)
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        if pos + n > len(buf):
            raise Truncated("chunk data runs past its record")
        data = memoryview(_decompress(kind, bytes(buf[pos : pos + n]), size))
        p = 0
        while p < len(data):
            if p + 9 > len(data):
                raise Truncated("chunk record header cut short")
            op, length = struct.unpack_from("<BQ", data, p)
            if p + 9 + length > len(data):
                raise Truncated("chunk record cut short")
            yield from self._record(op, data[p + 9 : p + 9 + length])
            p += 9 + length

    def _record(self, op: int, buf: memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
        if op == OP_SCHEMA:
            (sid,) = struct.unpack_from("<H", buf, 0)
            name, pos = _string(buf, 2)
            encoding, pos = _string(buf, pos)
            text, _ = _string(buf, pos)
            self.schemas[sid] = (name, encoding, text)
        elif op == OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", buf, 0)
            topic, _ = _string(buf, 4)
            self.channels[cid] = (topic, sid)
        elif op == OP_MESSAGE:
            cid, _seq, log_time, pub_time = struct.unpack_from("<HIQQ", buf, 0)
            yield cid, log_time, pub_time, buf[22:]


class RecoveredMcapReader(RecoveredTopics):
    """The complete messages of a truncated mcap, behind the reader interface replay uses."""

    kind = "mcap"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        scan = McapScan(self.path)
        counts: dict[int, int] = {}
        for cid, *_ in scan.records():
            counts[cid] = counts.get(cid, 0) + 1
        self.problem = scan.problem
        self.valid_bytes = scan.valid_bytes
        self.message_count = sum(counts.values())
        self.connections: list[Any] = []
        self._by_channel: dict[int, Any] = {}
        for cid, (topic, sid) in sorted(scan.channels.items()):
            name, encoding, text = scan.schemas.get(sid, ("?", "", ""))
            conn = recovered_connection(
                self, cid, topic, name, (encoding, text), counts.get(cid, 0)
            )
            self.connections.append(conn)
            self._by_channel[cid] = conn

    def messages(self, connections: Any = ()) -> Iterator[tuple[Any, int, bytes]]:
        """Messages in file order; raises :class:`Truncated` where the data stops being valid."""
        wanted = {c.id for c in connections} if connections else set(self._by_channel)
        scan = McapScan(self.path)
        for cid, log_time, _pub, data in scan.records():
            if cid in wanted and cid in self._by_channel:
                yield self._by_channel[cid], log_time, bytes(data)
        if scan.problem:
            raise Truncated(scan.problem)

    def close(self) -> None:
        """Nothing to release: every walk opens and closes the file itself."""
