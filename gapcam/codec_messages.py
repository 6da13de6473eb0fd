"""Hearing what libjpeg, libpng and OpenCV's codecs say while they decode.

libjpeg reports corrupt data (flipped bits that break a Huffman code, spliced files, data cut
short and closed with an end marker) only as a *warning*: it prints "Corrupt JPEG data: ..." with
``fprintf(stderr)``, fills what it could not read with grey, and OpenCV returns that image as if
nothing happened. libpng prints its errors the same way. There is no callback for either in
OpenCV's Python API, and ``cv2.utils.logging.setLogLevel`` silences only OpenCV's own log, not
these libraries' ``fprintf`` (both were tried on OpenCV 5.0).

So :func:`capture` points file descriptor 2 at a private temporary file for the duration of one
decode (a ``dup2`` pair, a few microseconds), and sorts what was written: codec messages come back
to the caller - who treats corruption as a decode error and logs the rest through a throttled
logger, so a stream of broken frames cannot flood the console - and anything else (another
thread's log line that happened to land in that window) is written on to the real stderr.

Decodes that capture run one at a time (a lock): fd 2 is process-wide.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

#: A line a codec printed: libjpeg's messages, libpng's, OpenCV's imgcodecs log.
_CODEC_LINE = re.compile(
    rb"^(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|"
    rb"Inconsistent progression sequence|Warning: |Unknown Adobe|Application transferred|"
    rb"Invalid JPEG|JPEG datastream|libpng (warning|error)|\[ ?(WARN|ERROR|INFO|DEBUG)[^\]]*\]"
    rb".*(imgcodecs|grfmt|loadsave|imdecode|bitstrm|exif))"
)

#: Messages that mean the pixels are not what the file encodes (the image must not be used).
_CORRUPTION = re.compile(
    r"Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|"
    r"Inconsistent progression sequence|Invalid JPEG|libpng error|IDAT|CRC error|"
    r"Extra compressed data|\[ ?ERROR"
)

_lock = threading.Lock()
_sink: tempfile._TemporaryFileWrapper | None = None  # type: ignore[type-arg]


def is_corruption(message: str) -> bool:
    """Whether a codec message says the decoded pixels are wrong (not just a quirk of the file)."""
    return _CORRUPTION.search(message) is not None


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """Collect the codec messages written to fd 2 inside the ``with`` block (list filled on exit)."""
    global _sink
    messages: list[str] = []
    with _lock:
        if _sink is None:
            _sink = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        sink = _sink.fileno()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a daemon): nothing to redirect or to hear
            yield messages
            return
        os.dup2(sink, 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            size = os.lseek(sink, 0, os.SEEK_CUR)
            if size:
                text = os.pread(sink, size, 0)
                os.ftruncate(sink, 0)
                os.lseek(sink, 0, os.SEEK_SET)
                _sort(text, messages)


def _sort(text: bytes, messages: list[str]) -> None:
    other: list[bytes] = []
    for line in text.splitlines(keepends=True):
        if _CODEC_LINE.match(line):
            messages.append(" ".join(line.decode("utf-8", "replace").split()))
        else:
            other.append(line)
    if other:
        with contextlib.suppress(OSError):
            os.write(2, b"".join(other))
