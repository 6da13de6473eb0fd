"""Hearing libjpeg/libpng/OpenCV codec messages during one decode (gapcam.codec_messages)."""

from __future__ import annotations

import os
import threading

from gapcam import codec_messages


def test_other_threads_stderr_is_not_swallowed(capfd):
    """fd 2 is redirected while a frame decodes; other output written then is passed on."""
    with codec_messages.capture() as said:
        os.write(2, b"a log line of another thread\n")
        t = threading.Thread(target=lambda: os.write(2, b"and one from a thread\n"))
        t.start()
        t.join()
        os.write(2, b"Corrupt JPEG data: premature end of data segment\n")
    err = capfd.readouterr().err
    assert "a log line of another thread" in err and "and one from a thread" in err
    assert said == ["Corrupt JPEG data: premature end of data segment"]
    assert "Corrupt JPEG" not in err


def test_corruption_is_told_from_remarks():
    assert codec_messages.is_corruption("Corrupt JPEG data: bad Huffman code")
    assert codec_messages.is_corruption("Premature end of JPEG file")
    assert codec_messages.is_corruption("libpng error: IDAT: CRC error")
    assert not codec_messages.is_corruption("libpng warning: iCCP: known incorrect sRGB profile")
    assert not codec_messages.is_corruption("Warning: unknown JFIF revision number 3.01")
