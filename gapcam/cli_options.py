"""Command-line options shared by several ``gapcam`` sub-commands (one definition each)."""

from __future__ import annotations

import argparse

from gapcam.imageio import DEFAULT_MAX_PIXELS


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a one-line usage error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_max_pixels(p: argparse.ArgumentParser, *, default: int | None = DEFAULT_MAX_PIXELS) -> None:
    """``--max-pixels``: encoded images claiming more pixels are refused before decoding.

    ``default=None`` lets a command tell "not given" from the default (replay: a node parameter
    file may set ``max_pixels`` and an explicit option overrides it).
    """
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=default,
        metavar="N",
        help="refuse images whose header claims more pixels than this, before decoding "
        f"(decompression bombs); default {DEFAULT_MAX_PIXELS} = 7680x4320 (8K)",
    )
