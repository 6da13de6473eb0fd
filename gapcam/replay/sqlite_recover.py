"""Reading the complete rows of a rosbag2 ``.db3`` whose end is missing (a recorder that crashed,
a disk that filled up, a copy cut short).

SQLite refuses such a file as a whole ("database disk image is malformed": the header counts
pages that are not there), so ``rosbags`` and ``ros2 bag`` read none of it although most rows
are intact. This reader parses the file format itself (https://sqlite.org/fileformat.html): the
schema on page 1 gives the root pages of ``topics`` and ``message_definitions``; the messages are
found by scanning every page that is still complete for table-leaf cells shaped like a rosbag2
``messages`` row (``id``, ``topic_id``, ``timestamp``, ``data``), following each row's overflow
chain and keeping only rows whose data is entirely in the file. Walking the messages b-tree from
its root would lose every row under an interior page that lay past the cut.

It offers the small part of the ``rosbags`` reader interface that replay uses, like
:class:`~gapcam.replay.mcap_recover.RecoveredMcapReader`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from gapcam.replay.recovered import RecoveredTopics, recovered_connection

_MAGIC = b"SQLite format 3\x00"
_LEAF_TABLE, _INTERIOR_TABLE = 0x0D, 0x05


class _Row(NamedTuple):
    timestamp: int
    rowid: int
    topic_id: int
    page: int
    cell: int  #: offset of the cell in the file


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    """SQLite varint at ``pos``: (value, position after it)."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _column_size(serial: int) -> int:
    if serial in _INT_SIZES:
        return _INT_SIZES[serial]
    if serial == 7:
        return 8
    if serial >= 12:
        return (serial - 12) // 2
    return 0  # NULL, constants 0 and 1


def _column(serial: int, data: bytes, pos: int) -> Any:
    if serial == 0:
        return None
    if serial in (8, 9):
        return serial - 8
    if serial in _INT_SIZES:
        n = _INT_SIZES[serial]
        return int.from_bytes(data[pos : pos + n], "big", signed=True)
    if serial == 7:
        return struct.unpack_from(">d", data, pos)[0]
    raw = data[pos : pos + _column_size(serial)]
    return raw if serial % 2 == 0 else raw.decode("utf-8", "replace")


def _serials(header: bytes) -> list[int]:
    size, pos = _varint(header, 0)
    out = []
    while pos < size:
        serial, pos = _varint(header, pos)
        out.append(serial)
    return out


class Truncated(Exception):
    """The row or page runs past the end of the file (or is not what it claims)."""


class SqliteFile:
    """Pages, cells and records of an SQLite file that may end early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            self.data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.data[:16] != _MAGIC:
            raise Truncated("not an SQLite 3 file")
        (size,) = struct.unpack_from(">H", self.data, 16)
        self.page_size = 65536 if size == 1 else size
        self.usable = self.page_size - self.data[20]
        self.pages = len(self.data) // self.page_size  #: complete pages in the file
        (counter,) = struct.unpack_from(">I", self.data, 24)
        (declared,) = struct.unpack_from(">I", self.data, 28)
        (valid_for,) = struct.unpack_from(">I", self.data, 92)
        #: pages the header says the database has (0: unknown, an old writer)
        self.declared_pages = declared if valid_for == counter else 0

    def close(self) -> None:
        self.data.close()

    def page_offset(self, page: int) -> int:
        if not 1 <= page <= self.pages:
            raise Truncated(f"page {page} is past the end of the file ({self.pages} pages)")
        return (page - 1) * self.page_size

    def cells(self, page: int) -> tuple[int, list[int]]:
        """(page type, file offsets of its cells)."""
        base = self.page_offset(page)
        head = base + (100 if page == 1 else 0)
        kind = self.data[head]
        (count,) = struct.unpack_from(">H", self.data, head + 3)
        header_len = 12 if kind in (0x02, _INTERIOR_TABLE) else 8
        ptrs = struct.unpack_from(f">{count}H", self.data, head + header_len)
        return kind, [base + p for p in ptrs]

    def leaf_cell(self, offset: int) -> tuple[int, bytes]:
        """(rowid, whole payload) of a table-leaf cell, overflow pages included."""
        size, pos = _varint(self.data, offset)
        rowid, pos = _varint(self.data, pos)
        local = self._local_size(size)
        payload = bytearray(self.data[pos : pos + local])
        if local < size:
            (nxt,) = struct.unpack_from(">I", self.data, pos + local)
            while len(payload) < size:
                if nxt == 0:
                    raise Truncated("overflow chain ends early")
                start = self.page_offset(nxt)
                (following,) = struct.unpack_from(">I", self.data, start)
                take = min(self.usable - 4, size - len(payload))
                payload += self.data[start + 4 : start + 4 + take]
                nxt = following
        return rowid, bytes(payload)

    def record_head(self, offset: int) -> tuple[int, list[int], int]:
        """(rowid, serial types, payload size) of a table-leaf cell, reading only local bytes."""
        size, pos = _varint(self.data, offset)
        rowid, pos = _varint(self.data, pos)
        hsize, _ = _varint(self.data, pos)
        if hsize > min(size, self._local_size(size)) or hsize > 64:
            raise Truncated("record header does not fit")
        return rowid, _serials(bytes(self.data[pos : pos + hsize])), size

    def record(self, offset: int) -> tuple[int, list[Any]]:
        rowid, payload = self.leaf_cell(offset)
        serials = _serials(payload)
        hsize, _ = _varint(payload, 0)
        pos, values = hsize, []
        for serial in serials:
            values.append(_column(serial, payload, pos))
            pos += _column_size(serial)
        if pos > len(payload):
            raise Truncated("record is shorter than its header says")
        return rowid, values

    def table(self, root: int) -> Iterator[tuple[int, list[Any]]]:
        """Rows of the table b-tree at ``root`` (a small table: topics, definitions)."""
        kind, cells = self.cells(root)
        if kind == _LEAF_TABLE:
            for c in cells:
                yield self.record(c)
        elif kind == _INTERIOR_TABLE:
            for c in cells:
                (child,) = struct.unpack_from(">I", self.data, c)
                yield from self.table(child)
            head = self.page_offset(root) + (100 if root == 1 else 0)
            (right,) = struct.unpack_from(">I", self.data, head + 8)
            yield from self.table(right)
        else:
            raise Truncated(f"page {root} is not a table page")

    def _local_size(self, size: int) -> int:
        u = self.usable
        x = u - 35
        if size <= x:
            return size
        m = ((u - 12) * 32 // 255) - 23
        k = m + (size - m) % (u - 4)
        return k if k <= x else m


def _is_message_row(serials: list[int]) -> bool:
    """(id INTEGER PRIMARY KEY -> NULL, topic_id int, timestamp int, data blob)."""
    return (
        len(serials) == 4
        and serials[0] == 0
        and (serials[1] in _INT_SIZES or serials[1] in (8, 9))
        and (serials[2] in _INT_SIZES or serials[2] in (8, 9))
        and serials[3] >= 12
        and serials[3] % 2 == 0
    )


class RecoveredSqliteReader(RecoveredTopics):
    """The complete rows of a truncated rosbag2 ``.db3``, behind the reader interface replay uses."""

    kind = "sqlite3"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = SqliteFile(self.path)
        f = self._file
        roots = {
            values[1]: values[3]
            for _, values in f.table(1)
            if len(values) >= 4 and values[0] == "table"
        }
        if "topics" not in roots or "messages" not in roots:
            raise Truncated("not a rosbag2 database (no topics/messages table)")
        topics = {rowid: values for rowid, values in f.table(roots["topics"])}
        definitions: dict[str, tuple[str, str]] = {}
        if "message_definitions" in roots:
            for _, (_, msgtype, encoding, text, *_rest) in f.table(roots["message_definitions"]):
                definitions[msgtype] = (encoding, text)
        self._rows, self.problem = self._scan(set(topics))
        counts: dict[int, int] = {}
        for row in self._rows:
            counts[row.topic_id] = counts.get(row.topic_id, 0) + 1
        self.message_count = len(self._rows)
        self.connections: list[Any] = []
        self._by_topic_id: dict[int, Any] = {}
        for tid, values in sorted(topics.items()):
            name, msgtype, serialization = values[1], values[2], values[3]
            conn = recovered_connection(
                self,
                tid,
                name,
                msgtype,
                definitions.get(msgtype, ("", "")),
                counts.get(tid, 0),
                serialization,
            )
            self.connections.append(conn)
            self._by_topic_id[tid] = conn

    def _scan(self, topic_ids: set[int]) -> tuple[list[_Row], str | None]:
        """Every complete ``messages`` row in the file's complete pages, in timestamp order."""
        f = self._file
        rows: list[_Row] = []
        seen: set[int] = set()
        lost = 0
        for page in range(2, f.pages + 1):
            base = f.page_offset(page)
            if f.data[base] != _LEAF_TABLE:
                continue
            try:
                _, cells = f.cells(page)
            except (struct.error, IndexError):
                continue
            for c in cells:
                try:
                    rowid, serials, _ = f.record_head(c)
                    if not _is_message_row(serials) or rowid in seen:
                        continue
                    _, values = f.record(c)  # also proves the overflow chain is complete
                except (Truncated, struct.error, IndexError):
                    lost += 1
                    continue
                if values[1] in topic_ids:
                    seen.add(rowid)
                    rows.append(_Row(values[2], rowid, values[1], page, c))
        rows.sort()
        if not lost and f.pages >= f.declared_pages:
            return rows, None  # an intact file (opened here after all)
        size = f.pages * f.page_size
        problem = f"file ends after {size} bytes" + (f", {lost} row(s) cut off" if lost else "")
        return rows, problem

    def messages(self, connections: Any = ()) -> Iterator[tuple[Any, int, bytes]]:
        """Recovered messages in timestamp order (as rosbags reads a ``.db3``), then
        :class:`Truncated` to say the bag did not end where it should (as for mcap)."""
        wanted = {c.id for c in connections} if connections else set(self._by_topic_id)
        for row in self._rows:
            if row.topic_id in wanted:
                _, values = self._file.record(row.cell)
                yield self._by_topic_id[row.topic_id], row.timestamp, values[3]
        if self.problem:
            raise Truncated(self.problem)

    def close(self) -> None:
        self._file.close()
