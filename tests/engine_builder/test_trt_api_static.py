"""Static check of our TensorRT usage against the real API of every supported version.

No TensorRT here: the names come from NVIDIA's bindings wheels (tools/extract_trt_api.py ->
engine_builder/data/trt_api_names.json). The test collects, by AST, every TensorRT name the code
touches - ``trt.X.Y`` chains anywhere in engine_builder/ and the backend, attributes of TensorRT
objects in the two TensorRT-facing modules, and the methods our TensorRT subclasses override - and
requires each to be declared in ``trt_api.API_USES`` with the versions whose code path uses it;
then every declared name must exist in each of those versions, and names that TensorRT removed
must only be declared for versions before the removal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine_builder import trt_api

REPO = Path(__file__).resolve().parents[2]
TRT_MODULES = [REPO / "engine_builder" / "trt_api.py", REPO / "gapcam/backends/tensorrt_backend.py"]
#: trt.X chains are looked for in the whole builder and the backend's TensorRT-facing modules
#: (the CUDA context included, so TensorRT use that moves there is still checked).
ALL_MODULES = sorted((REPO / "engine_builder").glob("*.py")) + [
    REPO / "gapcam/backends/tensorrt_backend.py",
    REPO / "gapcam/backends/cuda_context.py",
]

DATA = trt_api.load_extracted_names()
LINES = list(DATA["sources"])


def _line_version(line: str) -> tuple[int, ...]:
    return trt_api.parse_version(line)


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"] (None when the chain does not start at a plain name)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def trt_module_uses(path: Path) -> set[str]:
    """``trt.X.Y`` chains -> "X.Y" (dunder methods of classes are Python's, not TensorRT's)."""
    uses = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Del):
            chain = _chain(node)
            if chain and chain[0] == "trt" and len(chain) > 1:
                names = [p for p in chain[1:] if p == "__version__" or not p.startswith("__")]
                uses.add(".".join(names))
    # keep only maximal chains: "BuilderFlag.FP16" implies "BuilderFlag"
    return {u for u in uses if u and not any(v != u and v.startswith(u + ".") for v in uses)}


def trt_object_members(path: Path) -> set[str]:
    """Members used on variables that hold TensorRT objects (builder.x, self._engine.y ...)."""
    members = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            owner = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if owner in trt_api.TRT_OBJECT_NAMES and owner != "trt":
                members.add(node.attr)
    return members


def overridden_methods(path: Path) -> set[str]:
    """``Class.method`` for methods of our subclasses of TensorRT classes.

    A misspelt callback (``get_batch_sizes``) would silently never be called by TensorRT.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                chain = _chain(base)
                if chain and chain[0] == "trt":
                    for item in node.body:
                        # "_private" helpers are ours; anything else must be a TensorRT callback
                        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                            found.add(f"{chain[1]}.{item.name}")
    return found


def test_extracted_data_covers_the_supported_versions():
    assert {"8.6", "10.3", "10.13", "11.0", "11.4"} <= set(LINES)
    for line, src in DATA["sources"].items():
        assert src["version"].startswith(line), (line, src)
        assert src["names"] > 500


def test_every_trt_name_in_the_code_is_declared():
    declared = set(trt_api.API_USES)
    for path in ALL_MODULES:
        missing = trt_module_uses(path) - declared
        assert not missing, f"{path.name} uses trt.{sorted(missing)} not declared in API_USES"
    leaves = {k.rsplit(".", 1)[-1] for k in declared}
    for path in TRT_MODULES:
        missing = trt_object_members(path) - leaves
        assert not missing, f"{path.name}: TensorRT members {sorted(missing)} not in API_USES"
        missing = overridden_methods(path) - declared
        assert not missing, f"{path.name}: overrides {sorted(missing)} not in API_USES"


def test_only_trt_facing_modules_import_tensorrt():
    for path in ALL_MODULES:
        if path in TRT_MODULES:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert "tensorrt" not in mods, f"{path.name} imports tensorrt directly"


@pytest.mark.parametrize("line", LINES)
def test_declared_names_exist_where_the_code_uses_them(line):
    names = trt_api.names_for(DATA, line)
    version = _line_version(line)
    missing = [
        key
        for key, rng in trt_api.API_USES.items()
        if rng.contains(version)
        and not all(trt_api.name_exists(names, part) for part in key.split("."))
    ]
    assert not missing, f"TensorRT {line} lacks {missing}"


@pytest.mark.parametrize("name,removed", sorted(trt_api.REMOVED_IN.items()))
def test_removed_names_are_really_gone_and_only_used_before(name, removed):
    for line in LINES:
        exists = trt_api.name_exists(trt_api.names_for(DATA, line), name)
        assert exists == (_line_version(line)[:2] < removed), (name, line)
    for key, rng in trt_api.API_USES.items():
        if name in key.split("."):
            assert rng.until is not None and rng.until <= removed, (key, rng)


def test_capabilities_branch_where_the_api_changed():
    for line in LINES:
        names = trt_api.names_for(DATA, line)
        caps = trt_api.Capabilities(_line_version(line))
        assert caps.precision_flags == trt_api.name_exists(names, "FP16")
        assert caps.entropy_calibrator == trt_api.name_exists(names, "IInt8EntropyCalibrator2")
        assert caps.progress_monitor == trt_api.name_exists(names, "IProgressMonitor")
        if caps.strongly_typed:
            assert trt_api.name_exists(names, "STRONGLY_TYPED")


def test_the_checker_catches_a_removed_api():
    """The table check is not vacuous: execute_async_v2 used on 10.x would be reported."""
    names_10 = trt_api.names_for(DATA, "10.3")
    assert not trt_api.name_exists(names_10, "execute_async_v2")
    assert trt_api.name_exists(trt_api.names_for(DATA, "8.6"), "execute_async_v2")
    src = "def f(context, trt):\n    context.execute_async_v2([], 0)\n    trt.BuilderFlag.STRICT_NANS\n"
    tmp = Path(__file__).with_name("_probe_module.py")
    try:
        tmp.write_text(src)
        assert "execute_async_v2" in trt_object_members(tmp)
        assert trt_module_uses(tmp) == {"BuilderFlag.STRICT_NANS"}
    finally:
        tmp.unlink()


def test_versions_and_cache_codes():
    assert trt_api.parse_version("10.3.0.30") == (10, 3, 0, 30)
    assert trt_api.parse_version("8.5.2-1+cuda11.4") == (8, 5, 2)
    assert trt_api.calibration_cache_version_code((8, 6, 1)) == 8601
    assert trt_api.calibration_cache_version_code((10, 3, 0)) == 100300
    assert trt_api.VersionRange(until=(11, 0)).contains((10, 16, 1))
    assert not trt_api.VersionRange(until=(11, 0)).contains((11, 0, 0))
