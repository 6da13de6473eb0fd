"""TensorRT entropy calibration, in numpy, and its cache file.

The cache is what ``IInt8EntropyCalibrator2`` writes and ``trtexec --calib=FILE`` reads::

    TRT-100300-EntropyCalibration2
    image: 3c010a14
    /features/features.0/features.0.2/Relu_output_0: 3d8e1c2b

one line per tensor, the hex being the big-endian float32 *scale* (``amax / 127``). With a cache
present, TensorRT takes the scales from it and runs no calibration batches, so the same scales
can be computed on any PC (:func:`entropy_amax` over activations collected with ONNX Runtime)
and used for the Q/DQ model too: both INT8 paths then quantise identically.

The algorithm is TensorRT's (Migacz, "8-bit inference with TensorRT", GTC 2017): a 2048-bin
histogram of ``|x|`` over ``[0, max|x|]``; for each candidate threshold bin ``i`` in 128..2047 the
reference ``P`` is the first ``i`` bins with the outliers added to the last one, ``Q`` is those
``i`` bins merged into 128 levels and expanded back over the non-empty bins; the threshold with
the smallest KL(P || Q) wins, ``amax = (i + 0.5) * bin_width``. As in NVIDIA's
pytorch-quantization, the zero bin is set to its neighbour first (ReLU outputs pile up at 0).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine_builder.errors import EngineBuilderError

ALGORITHM = "EntropyCalibration2"
NUM_BINS = 2048
NUM_QUANTIZED_BINS = 128
INT8_MAX = 127.0
#: Smallest scale written: an all-zero tensor must not get a zero (invalid) scale.
MIN_AMAX = 1e-8
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{8})$")


# ---------------------------------------------------------------------------- file format
def scale_to_hex(scale: float) -> str:
    """Big-endian IEEE float32 bits as 8 lowercase hex digits (TensorRT's cache encoding)."""
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


@dataclass
class CalibrationCache:
    """Parsed cache: TensorRT version code of the header, algorithm, and scale per tensor."""

    version_code: int
    algorithm: str
    scales: dict[str, float]

    def amax(self, name: str) -> float:
        return self.scales[name] * INT8_MAX


def format_cache(scales: dict[str, float], version_code: int) -> str:
    lines = [f"TRT-{int(version_code)}-{ALGORITHM}"]
    for name, scale in scales.items():
        if ": " in name or "\n" in name:
            raise EngineBuilderError(
                f"tensor name {name!r} cannot be written to a calibration cache"
            )
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_cache(path: str | Path, scales: dict[str, float], version_code: int) -> Path:
    """Write ``scales`` (tensor -> amax/127) as a TensorRT entropy calibration cache."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(format_cache(scales, version_code))
    return p


def parse_cache(text: str, where: str = "calibration cache") -> CalibrationCache:
    lines = [ln.rstrip("\r") for ln in text.splitlines() if ln.strip()]
    if not lines or not (m := _HEADER.match(lines[0])):
        raise EngineBuilderError(
            f"{where}: not a TensorRT calibration cache (first line must be "
            f"TRT-<version>-{ALGORITHM})"
        )
    scales: dict[str, float] = {}
    for n, line in enumerate(lines[1:], start=2):
        lm = _LINE.match(line)
        if not lm:
            raise EngineBuilderError(f"{where}: line {n} is not `name: <8 hex digits>`: {line!r}")
        scales[lm.group(1)] = hex_to_scale(lm.group(2))
    return CalibrationCache(int(m.group(1)), m.group(2), scales)


def read_cache(path: str | Path) -> CalibrationCache:
    p = Path(path)
    if not p.is_file():
        raise EngineBuilderError(f"{p}: calibration cache not found")
    cache = parse_cache(p.read_text(errors="replace"), str(p))
    if cache.algorithm != ALGORITHM:
        raise EngineBuilderError(
            f"{p}: cache was written by {cache.algorithm}, IInt8EntropyCalibrator2 needs {ALGORITHM}"
        )
    return cache


# ---------------------------------------------------------------------------- the algorithm
def abs_histogram(values: np.ndarray, amax: float, bins: int = NUM_BINS) -> np.ndarray:
    """Histogram of ``|values|`` over ``[0, amax]`` (the range every batch must share)."""
    top = max(float(amax), MIN_AMAX)
    hist, _ = np.histogram(np.abs(values).ravel(), bins=bins, range=(0.0, top))
    return hist.astype(np.int64)


def _smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """Give empty bins a little mass so KL stays finite (TensorRT/MXNet smooth the same way)."""
    if not p.any():
        return None
    out = p.astype(np.float64) + eps * (p == 0)
    return out / out.sum()


def entropy_amax(
    hist: np.ndarray,
    hist_max: float,
    *,
    start_bin: int = NUM_QUANTIZED_BINS,
    num_quantized_bins: int = NUM_QUANTIZED_BINS,
) -> float:
    """Threshold minimising KL(P || Q) over candidate bins ``start_bin .. len(hist)-1``."""
    hist = np.asarray(hist, dtype=np.float64).copy()
    n = hist.size
    width = float(hist_max) / n
    if hist.sum() == 0 or hist_max <= 0:
        return MIN_AMAX
    # The zero bin holds every ReLU-clipped value; left as is, its spike dominates the KL and
    # picks a far too small threshold. NVIDIA's pytorch-quantization flattens it the same way.
    hist[0] = hist[1]
    nonzero_bins = np.flatnonzero(hist)
    if nonzero_bins[-1] < start_bin:  # all mass below the first candidate: no clipping needed
        return max((nonzero_bins[-1] + 1) * width, MIN_AMAX)
    csum = np.concatenate([[0.0], np.cumsum(hist)])
    best_i, best_kl = n, np.inf
    for i in range(start_bin, n):
        p = hist[:i].copy()
        p[i - 1] += csum[n] - csum[i]  # outliers clipped into the last bin
        merged = i // num_quantized_bins
        starts = np.arange(num_quantized_bins) * merged
        sliced = hist[:i]
        sums = np.add.reduceat(sliced, starts)  # last chunk runs to i
        present = (sliced != 0).astype(np.float64)
        counts = np.add.reduceat(present, starts)
        lengths = np.diff(np.append(starts, i))
        per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        q = np.repeat(per_bin, lengths) * present
        ps, qs = _smooth(p / p.sum()), _smooth(q)
        if ps is None or qs is None:
            continue
        kl = float(np.sum(ps * np.log(ps / qs)))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return max((best_i + 0.5) * width, MIN_AMAX)


def percentile_amax(hist: np.ndarray, hist_max: float, percentile: float = 99.99) -> float:
    """Smallest threshold keeping ``percentile`` % of ``|x|`` (upper edge of that bin)."""
    hist = np.asarray(hist, dtype=np.float64)
    total = hist.sum()
    if total == 0 or hist_max <= 0:
        return MIN_AMAX
    idx = int(np.searchsorted(np.cumsum(hist), total * percentile / 100.0))
    return max((idx + 1) * float(hist_max) / hist.size, MIN_AMAX)


def amax_from_histogram(hist: np.ndarray, hist_max: float, method: str, percentile: float) -> float:
    if method == "entropy":
        return entropy_amax(hist, hist_max)
    if method == "percentile":
        return percentile_amax(hist, hist_max, percentile)
    if method == "max":
        return max(float(hist_max), MIN_AMAX)
    raise EngineBuilderError(
        f"unknown calibration method {method!r}; use entropy, percentile or max"
    )


def scales_from_amax(amax: dict[str, float]) -> dict[str, float]:
    return {name: max(a, MIN_AMAX) / INT8_MAX for name, a in amax.items()}
