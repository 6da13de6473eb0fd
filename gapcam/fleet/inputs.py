"""Which bags a fleet run covers: bags, folders of bags and text files listing them.

A user points ``gapcam fleet`` at whatever they have - a bag directory, a folder holding hundreds
of them, a single ``.mcap``/``.db3`` file, or a list file written by another tool - so discovery
accepts all of these and gives every bag a unique, file-system-safe name for ``OUT/<name>/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gapcam.errors import GapcamError

STORAGE_SUFFIXES = (".mcap", ".db3")
#: Folders written by replay itself (``<out>_report``) and by a fleet run are never inputs.
_SKIP_DIRS = {"__pycache__"}


@dataclass(frozen=True)
class BagInput:
    """One input bag and the name of its output folder."""

    name: str
    path: Path


def is_bag_dir(path: Path) -> bool:
    """A rosbag2 directory: ``metadata.yaml``, or exactly one storage file (metadata lost)."""
    if not path.is_dir():
        return False
    if (path / "metadata.yaml").is_file():
        return True
    storage = [p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file()]
    has_subdirs = any(p.is_dir() for p in path.iterdir())
    return len(storage) == 1 and not has_subdirs


def _is_list_file(path: Path) -> bool:
    return path.is_file() and path.suffix not in STORAGE_SUFFIXES


def _from_list_file(path: Path) -> list[Path]:
    """Non-empty lines that are not ``#`` comments; relative paths are relative to the file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GapcamError(f"{path}: cannot read the bag list ({exc})") from exc
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    if not out:
        raise GapcamError(f"{path}: the bag list names no bags (one path per line)")
    return out


def _from_folder(path: Path) -> list[Path]:
    """Bags directly inside ``path``: bag directories and loose storage files, sorted by name."""
    found = []
    for child in sorted(path.iterdir()):
        if child.name in _SKIP_DIRS or child.name.endswith("_report"):
            continue
        if is_bag_dir(child) or (child.is_file() and child.suffix in STORAGE_SUFFIXES):
            found.append(child)
    return found


def discover(inputs: list[str | Path]) -> list[Path]:
    """Every bag path named by ``inputs``, in order, without duplicates.

    Raises :class:`GapcamError` for a path that does not exist or a folder without bags, so a
    typo is not silently a fleet run over nothing.
    """
    bags: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise GapcamError(f"{p}: no such bag, folder or bag list")
        if p.is_dir():
            if is_bag_dir(p):
                bags.append(p)
                continue
            inside = _from_folder(p)
            if not inside:
                raise GapcamError(
                    f"{p}: no rosbag2 bags inside (bag directories with metadata.yaml, or "
                    ".mcap/.db3 files)"
                )
            bags.extend(inside)
        elif p.suffix in STORAGE_SUFFIXES:
            bags.append(p)
        elif _is_list_file(p):
            for listed in _from_list_file(p):
                if not listed.exists():
                    raise GapcamError(f"{p}: lists {listed}, which does not exist")
                bags.append(listed)
    unique: dict[Path, Path] = {}
    for b in bags:
        unique.setdefault(b.resolve(), b)
    return list(unique.values())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "bag"


def name_bags(paths: list[Path]) -> list[BagInput]:
    """Output names: the bag's own name, prefixed by its parent's where two bags share one."""
    base = [_safe(p.stem if p.is_file() else p.name) for p in paths]
    counts: dict[str, int] = {}
    for b in base:
        counts[b] = counts.get(b, 0) + 1
    names: list[str] = []
    for p, b in zip(paths, base, strict=True):
        name = b if counts[b] == 1 else f"{_safe(p.resolve().parent.name)}__{b}"
        while name in names:
            name += "_"
        names.append(name)
    return [BagInput(n, p) for n, p in zip(names, paths, strict=True)]


def check_outside(bags: list[BagInput], out: Path) -> None:
    """Refuse an output folder that is one of the inputs or holds one in a task's folder."""
    out = out.resolve()
    for b in bags:
        bag = b.path.resolve()
        task_dir = out / b.name
        if bag == out or task_dir == bag or task_dir in bag.parents:
            raise GapcamError(
                f"--out {out}: would write over the input bag {b.path}; choose another folder"
            )
