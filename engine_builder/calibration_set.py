"""Calibration (and validation) image sets: manifests, hashing, loading, and diverse frame selection.

A set is a directory of images plus ``manifest.json``: every file with its sha256 (and label when
the images sit in class folders), the preprocessing of the model card it was made for, how the
frames were chosen, and how to regenerate them. The *set hash* covers exactly what a calibrator
sees - the files' bytes and the preprocessing - so an engine's metadata can name the data that
produced its INT8 scales, and a changed file is caught before it silently changes an engine.

Frame selection spreads over conditions instead of taking consecutive frames (which are nearly
identical at 30 fps): each frame is described by a small Lab thumbnail (layout, brightness) and
HSV histograms (colour, lighting, time of day); near-duplicates are dropped, then greedy
farthest-point sampling picks frames that cover the feature space. :func:`select_diverse` takes
BGR arrays or paths, so a rosbag reader can feed it decoded frames directly.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine_builder.errors import EngineBuilderError

# Frame selection (features, near-duplicate removal, farthest-point sampling) lives in the core,
# shared with `gapcam frames`; re-exported here for the calibration tools.
from gapcam.frame_selection import (  # noqa: F401
    DEDUP_THRESHOLD,
    HIST_BINS,
    THUMB,
    Selection,
    frame_features,
    select_diverse,
)
from gapcam.imageio import IMAGE_SUFFIXES, read_image
from gapcam.model_card import InputSpec, sha256_file
from gapcam.preprocess import preprocess

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "gapcam-calibration-set/1"
IMAGES_DIR = "images"

#: Default sets of the shipped model (paths relative to the repository root).
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALIBRATION_SET = REPO_ROOT / "calibration" / "default"
DEFAULT_VALIDATION_SET = REPO_ROOT / "calibration" / "validation"

#: Recipe of the default sets: synthetic scenes from gapcam.synth with fixed seeds.
DEFAULT_RECIPE = {
    "calibration": {
        "candidates": 768,
        "count": 256,
        "seed": 20240,
        "size": [224, 224],
        "description": "INT8 calibration of the shipped model: 256 of 768 synthetic rear-side "
        "scenes, chosen to spread over lighting, weather and traffic",
    },
    "validation": {
        "candidates": 512,
        "count": 512,
        "seed": 777,
        "size": [224, 224],
        "description": "Held-out synthetic scenes (other seed than calibration) for the Q/DQ "
        "report and engine verification",
    },
}


# ---------------------------------------------------------------------------- manifests
@dataclass
class ImageEntry:
    file: str  #: path relative to the set's image root, "/" separated
    sha256: str
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "sha256": self.sha256}
        if self.label is not None:
            d["label"] = self.label
        return d


def set_hash(entries: Sequence[ImageEntry], preprocessing: dict[str, Any]) -> str:
    """sha256 of the sorted (file, sha256) list and the preprocessing: what a calibrator sees."""
    canon = {
        "images": sorted([e.file, e.sha256] for e in entries),
        "preprocessing": preprocessing,
    }
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


def preprocessing_of(spec: InputSpec) -> dict[str, Any]:
    d = dict(spec.__dict__)
    d["mean"], d["std"] = list(spec.mean), list(spec.std)
    return d


@dataclass
class ImageSet:
    """Images of a set on disk, in a fixed order, with the hash that names them."""

    root: Path  #: directory the entries are relative to
    entries: list[ImageEntry]
    preprocessing: dict[str, Any]
    manifest_path: Path | None = None
    manifest: dict[str, Any] | None = None

    @property
    def paths(self) -> list[Path]:
        return [self.root / e.file for e in self.entries]

    @property
    def labels(self) -> list[str | None]:
        return [e.label for e in self.entries]

    @property
    def hash(self) -> str:
        return set_hash(self.entries, self.preprocessing)

    @property
    def name(self) -> str:
        if self.manifest and self.manifest.get("name"):
            return str(self.manifest["name"])
        return self.root.name

    def describe(self) -> dict[str, Any]:
        """What the engine metadata and reports record about the data used."""
        return {
            "name": self.name,
            "path": str(self.manifest_path or self.root),
            "images": len(self.entries),
            "set_hash": self.hash,
            "selection": (self.manifest or {}).get("selection", {"method": "all files"}),
        }

    def subset(self, limit: int | None) -> ImageSet:
        """The first ``limit`` images in an order spread over the set (every k-th)."""
        if not limit or limit >= len(self.entries):
            return self
        idx = np.linspace(0, len(self.entries) - 1, limit).round().astype(int)
        return ImageSet(
            self.root, [self.entries[i] for i in idx], self.preprocessing, None, self.manifest
        )

    def holdout(self, every: int = 5) -> tuple[ImageSet, ImageSet]:
        """(rest, every ``every``-th image): a validation split of a set that has none.

        ``engine-builder quantize`` without ``--val`` calibrates on the rest and evaluates on
        the held-out images, so the report is not measured on the data that set the ranges.
        """
        held = self.entries[every - 1 :: every]
        rest = [e for i, e in enumerate(self.entries) if (i + 1) % every]
        base = dict(self.manifest or {})
        name = self.name
        sel = {"method": f"every {every}th image of {name} held out for validation"}
        return (
            ImageSet(
                self.root,
                rest,
                self.preprocessing,
                None,
                {**base, "name": f"{name} (calibration part)", "selection": sel},
            ),
            ImageSet(
                self.root,
                held,
                self.preprocessing,
                None,
                {**base, "name": f"{name} (held-out 1/{every})", "selection": sel},
            ),
        )

    def batches(self, spec: InputSpec, batch_size: int) -> Iterator[np.ndarray]:
        """Preprocessed ``float32`` batches through the one runtime preprocessing."""
        paths = self.paths
        for i in range(0, len(paths), batch_size):
            yield preprocess([read_image(p) for p in paths[i : i + batch_size]], spec)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan_images(root: Path) -> list[ImageEntry]:
    """All images under ``root`` (sorted); a first-level folder name is taken as the label."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    entries = []
    for p in files:
        rel = p.relative_to(root)
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(ImageEntry(rel.as_posix(), sha256_file(p), label))
    return entries


def write_manifest(
    out_dir: Path,
    entries: list[ImageEntry],
    spec: InputSpec,
    *,
    name: str,
    selection: dict[str, Any],
    source: dict[str, Any],
    description: str = "",
) -> Path:
    """Write ``out_dir/manifest.json`` for images under ``out_dir/images``."""
    preprocessing = preprocessing_of(spec)
    doc = {
        "schema": MANIFEST_SCHEMA,
        "name": name,
        "description": description,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "image_root": IMAGES_DIR,
        "preprocessing": preprocessing,
        "selection": selection,
        "source": source,
        "set_hash": set_hash(entries, preprocessing),
        "count": len(entries),
        "images": [e.to_dict() for e in entries],
    }
    path = out_dir / MANIFEST
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineBuilderError(f"{path}: cannot read calibration manifest ({exc})") from exc
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise EngineBuilderError(
            f"{path}: not a calibration manifest (schema {doc.get('schema')!r}, "
            f"expected {MANIFEST_SCHEMA!r})"
        )
    return doc


def load_image_set(
    path: str | Path, spec: InputSpec, *, verify: bool = True, regenerate_hint: str = ""
) -> ImageSet:
    """Open a set: a manifest file, a directory with ``manifest.json``, or a plain image folder.

    With a manifest every listed file must exist with its recorded sha256 (``verify``): an engine
    whose metadata names a set must have been calibrated on exactly those bytes.
    """
    path = Path(path)
    manifest_path = path if path.is_file() else path / MANIFEST
    if manifest_path.is_file():
        doc = read_manifest(manifest_path)
        root = manifest_path.parent / doc.get("image_root", IMAGES_DIR)
        entries = [ImageEntry(e["file"], e["sha256"], e.get("label")) for e in doc["images"]]
        hint = regenerate_hint or (doc.get("source") or {}).get("command", "")
        missing = [e.file for e in entries if not (root / e.file).is_file()]
        if missing:
            raise EngineBuilderError(
                f"{manifest_path}: {len(missing)} of {len(entries)} images are missing "
                f"(first: {root / missing[0]})"
                + (f"; regenerate them with `{hint}`" if hint else "")
            )
        if verify:
            changed = [e.file for e in entries if sha256_file(root / e.file) != e.sha256]
            if changed:
                raise EngineBuilderError(
                    f"{manifest_path}: {len(changed)} images differ from their sha256 in the "
                    f"manifest (first: {changed[0]})"
                    + (f"; regenerate the set with `{hint}`" if hint else "")
                )
        return ImageSet(root, entries, doc["preprocessing"], manifest_path, doc)
    if path.is_dir():
        entries = scan_images(path)
        if not entries:
            raise EngineBuilderError(f"{path}: no images and no {MANIFEST} in this directory")
        return ImageSet(path, entries, preprocessing_of(spec))
    if path.resolve() in (DEFAULT_CALIBRATION_SET, DEFAULT_VALIDATION_SET):
        raise EngineBuilderError(
            f"{path}: default set not generated yet; run `engine-builder calib default`"
        )
    raise EngineBuilderError(f"{path}: calibration set not found (a directory or a manifest.json)")


# ---------------------------------------------------------------------------- building sets
def create_set_from_images(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    spec: InputSpec,
    *,
    count: int,
    name: str | None = None,
    dedup_threshold: float = DEDUP_THRESHOLD,
    source_info: dict[str, Any] | None = None,
    description: str = "",
) -> ImageSet:
    """Select ``count`` diverse frames from image files/folders, copy them and write a manifest.

    The copies keep the first folder level under each source as label (ImageFolder layout).
    """
    out_dir = Path(out_dir)
    candidates: list[tuple[Path, str]] = []  # (file, relative name)
    for src in map(Path, sources):
        if src.is_dir():
            for e in scan_images(src):
                candidates.append((src / e.file, e.file))
        elif src.is_file():
            candidates.append((src, src.name))
        else:
            raise EngineBuilderError(f"{src}: no such image file or directory")
    if not candidates:
        raise EngineBuilderError(f"no images found in {', '.join(map(str, sources))}")
    selection = select_diverse([c[0] for c in candidates], count, dedup_threshold=dedup_threshold)
    images = out_dir / IMAGES_DIR
    if images.exists():
        shutil.rmtree(images)
    entries = []
    for i in sorted(selection.indices):
        src, rel = candidates[i]
        dst = images / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        parts = Path(rel).parts
        entries.append(ImageEntry(rel, sha256_file(dst), parts[0] if len(parts) > 1 else None))
    source = source_info or {"kind": "images", "paths": [str(s) for s in sources]}
    manifest = write_manifest(
        out_dir,
        entries,
        spec,
        name=name or out_dir.name,
        selection=selection.method,
        source=source,
        description=description,
    )
    return load_image_set(manifest, spec)


def generate_synthetic_set(
    out_dir: str | Path,
    spec: InputSpec,
    *,
    candidates: int,
    count: int,
    seed: int,
    size: tuple[int, int] = (224, 224),
    name: str | None = None,
    command: str = "",
    description: str = "",
    progress: bool = True,
) -> ImageSet:
    """Render ``candidates`` synthetic scenes with a fixed seed and keep ``count`` diverse ones.

    With ``count == candidates`` every rendered image is kept (a validation set).
    """
    try:
        from gapcam.synth import generate_dataset
    except ImportError as exc:
        raise EngineBuilderError(
            f"synthetic data generator unavailable ({exc}); pass an image folder instead"
        ) from exc
    import tempfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = {
        "kind": "synthetic",
        "generator": "gapcam.synth.generate_dataset",
        "seed": seed,
        "candidates": candidates,
        "size": list(size),
        "command": command,
    }
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".render-") as tmp:
        generate_dataset(tmp, candidates, seed, size=tuple(size), workers=2, progress=progress)
        if count >= candidates:
            images = out_dir / IMAGES_DIR
            if images.exists():
                shutil.rmtree(images)
            shutil.copytree(tmp, images)
            entries = scan_images(images)
            selection = {"method": "all", "candidates": candidates, "selected": len(entries)}
            manifest = write_manifest(
                out_dir,
                entries,
                spec,
                name=name or out_dir.name,
                selection=selection,
                source=source,
            )
            return load_image_set(manifest, spec)
        return create_set_from_images(
            [tmp],
            out_dir,
            spec,
            count=count,
            name=name,
            source_info=source,
            description=description,
        )


def set_is_complete(path: Path) -> bool:
    """True when ``path`` has a manifest and every image it lists (no hashing)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    doc = read_manifest(manifest)
    root = manifest.parent / doc.get("image_root", IMAGES_DIR)
    return all((root / e["file"]).is_file() for e in doc["images"])


def generate_default_sets(
    names: Sequence[str],
    spec: InputSpec,
    *,
    say=print,
    progress: bool = True,
) -> dict[str, ImageSet]:
    """(Re)generate the shipped model's default sets (``calibration``, ``validation``).

    When the images come out identical to the committed manifest, the manifest file is kept
    byte for byte (no timestamp churn); otherwise the new one is written and a warning says so.
    """
    targets = {"calibration": DEFAULT_CALIBRATION_SET, "validation": DEFAULT_VALIDATION_SET}
    made = {}
    for name in names:
        recipe = DEFAULT_RECIPE[name]
        out = targets[name]
        manifest = out / MANIFEST
        before_text = manifest.read_text() if manifest.is_file() else None
        before = read_manifest(manifest) if before_text else None
        say(f"generating {out} ({recipe['count']} of {recipe['candidates']} synthetic images)")
        image_set = generate_synthetic_set(
            out,
            spec,
            candidates=recipe["candidates"],
            count=recipe["count"],
            seed=recipe["seed"],
            size=tuple(recipe["size"]),
            name=f"{name}-synthetic",
            command=f"engine-builder calib default --only {name}",
            description=recipe["description"],
            progress=progress,
        )
        if before and before.get("set_hash") == image_set.hash:
            manifest.write_text(before_text)
            say(f"{out.name}: reproduced exactly the committed manifest")
        elif before:
            say(
                f"WARNING: {out.name}: regenerated images differ from the committed manifest "
                f"(set hash {before.get('set_hash', '')[:12]} -> {image_set.hash[:12]}); "
                "a different gapcam.synth/OpenCV/numpy renders other pixels"
            )
        say(f"{out}: {len(image_set.entries)} images, set hash {image_set.hash[:12]}")
        made[name] = load_image_set(out, spec)
    return made
