#!/usr/bin/env python3
"""Extract the real Python API surface of TensorRT, per version, from NVIDIA's bindings wheels.

TensorRT cannot be imported on a machine without its libraries and a GPU, but the pybind module
``tensorrt.so`` inside the published bindings wheels (about 1 MB each on PyPI) holds every
exported name as a string. This script downloads one wheel per supported TensorRT line with
``pip download --no-deps``, pulls the identifiers out of the binary (plus the few names that the
wheel's ``__init__.py`` defines in Python, such as ``nptype`` and ``__version__``), and writes
``engine_builder/data/trt_api_names.json``. ``tests/engine_builder/test_trt_api_static.py`` checks
every TensorRT name our code uses against it.

Why tails of strings: the linker merges a string that is the suffix of another one
(``"INT8"`` lives inside ``"UINT8"``, ``"DataType"`` inside ``"nvinfer1::DataType"``), so a name is
recorded as the trailing identifier of every string in the binary.

Run: ``python tools/extract_trt_api.py`` (needs network access to PyPI; about 8 MB download).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: TensorRT line -> (PyPI package, exact published version). 8.5 (JetPack 5.1) has no wheel on
#: PyPI; 8.6 is its closest published API. 10.13/10.16/11.x are the CUDA 13 (Thor) wheels.
WHEELS: dict[str, tuple[str, str]] = {
    "8.6": ("tensorrt-bindings", "8.6.1"),
    "10.3": ("tensorrt-cu12-bindings", "10.3.0"),
    "10.13": ("tensorrt-cu13-bindings", "10.13.3.9"),
    "10.16": ("tensorrt-cu13-bindings", "10.16.1.11"),
    "11.0": ("tensorrt-cu13-bindings", "11.0.0.114"),
    "11.4": ("tensorrt-cu13-bindings", "11.4.0.106"),
}
PYTHON_VERSION = "3.10"  # Ubuntu 22.04 / JetPack 6 Python; the API does not depend on it.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64")

OUT = Path(__file__).resolve().parents[1] / "engine_builder" / "data" / "trt_api_names.json"

#: A C string literal: text up to its NUL terminator (docstrings span lines, so \n is text).
_C_STRING = re.compile(rb"([\x09\x0a\x0d\x20-\x7e]{2,})\x00")
_TAIL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
#: Itanium-mangled C++ symbols and type strings carry no Python API names.
_MANGLED = re.compile(
    r"pybind|nvinfer|nvonnxparser|nvuffparser|nvcaffeparser|^_Z|^N[0-9]|^P?F[A-Za-z]*[0-9]+[A-Za-z_]|St[0-9]"
)


def download(package: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", PYTHON_VERSION, "-d", str(dest), f"{package}=={version}"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wheels = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip saved no wheel for {package}=={version}")
    return wheels[0]


def rodata(elf: bytes) -> bytes:
    """The read-only data sections of a 64-bit little-endian ELF file (where string literals live).

    Scanning only these, not the whole file, keeps machine-code byte runs that happen to be
    printable (``AVAUATUSH``...) out of the name list.
    """
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise SystemExit("tensorrt.so is not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    names_off = sections[shstrndx][4]

    def name(sec: tuple) -> str:
        start = names_off + sec[0]
        return elf[start : elf.index(b"\0", start)].decode()

    chunks = [elf[s[4] : s[4] + s[5]] for s in sections if name(s).startswith(".rodata")]
    if not chunks:
        raise SystemExit("tensorrt.so has no .rodata section")
    return b"\0".join(chunks)


def names_in_binary(data: bytes) -> set[str]:
    """Trailing identifiers of every NUL-terminated string literal, minus C++ symbols."""
    names = set()
    for run in _C_STRING.findall(rodata(data)):
        m = _TAIL_IDENTIFIER.search(run.decode("ascii"))
        if m and len(m.group()) >= 3 and not _MANGLED.search(m.group()):
            names.add(m.group())
    return names


def names_in_init(source: str) -> set[str]:
    """Top-level functions, classes and assignments of the wheel's Python ``__init__``."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def extract(wheel: Path) -> set[str]:
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if base.startswith("tensorrt") and base.endswith(".so"):
                names |= names_in_binary(zf.read(info))
            elif base == "__init__.py":
                names |= names_in_init(zf.read(info).decode())
    if "execute_async_v3" not in names:
        raise SystemExit(f"{wheel.name}: no TensorRT names found; not a bindings wheel?")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", type=Path, help="keep the downloaded wheels in this directory")
    args = parser.parse_args(argv)
    per_version: dict[str, set[str]] = {}
    sources = {}
    with tempfile.TemporaryDirectory() as tmp:
        dest = args.keep or Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        for line, (package, version) in WHEELS.items():
            wheel = download(package, version, dest)
            per_version[line] = extract(wheel)
            sources[line] = {
                "package": package,
                "version": version,
                "wheel": wheel.name,
                "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                "names": len(per_version[line]),
            }
            print(f"{line:6s} {wheel.name}: {len(per_version[line])} names")
    common = set.intersection(*per_version.values())
    partial = {
        name: [v for v in WHEELS if name in per_version[v]]
        for name in sorted(set.union(*per_version.values()) - common)
    }
    doc = {
        "about": "TensorRT Python API names per version, extracted by tools/extract_trt_api.py "
        "from NVIDIA's bindings wheels (tail identifiers of the strings in tensorrt.so, plus "
        "names defined in the wheel's __init__.py). A name exists in a version if it is in "
        "'common' or its 'partial' list holds that version.",
        "sources": sources,
        "common": sorted(common),
        "partial": partial,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=0, sort_keys=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
