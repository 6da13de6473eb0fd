"""The TensorRT entropy-calibration cache file and the numpy entropy/percentile thresholds."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from engine_builder import entropy_cache as ec
from engine_builder.errors import EngineBuilderError


def test_write_read_round_trip_keeps_order_and_float32_scales(tmp_path):
    scales = {
        "image": 0.0172,
        "/features/features.0/features.0.2/Relu_output_0": 1.5e-3,
        "cam": 2e-6,
    }
    path = ec.write_cache(tmp_path / "c.cache", scales, 100300)
    cache = ec.read_cache(path)
    assert cache.version_code == 100300 and cache.algorithm == "EntropyCalibration2"
    assert list(cache.scales) == list(scales)
    for name, scale in scales.items():
        assert cache.scales[name] == pytest.approx(np.float32(scale), rel=0, abs=0)
    assert cache.amax("image") == pytest.approx(0.0172 * 127, rel=1e-6)


def test_file_format_is_tensorrts(tmp_path):
    text = ec.format_cache({"image": 1.0, "x:y": 0.5}, 8601)
    lines = text.splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[1] == "image: 3f800000"  # big-endian float32 of 1.0
    assert lines[2] == "x:y: 3f000000"
    assert text.endswith("\n")
    assert (
        ec.hex_to_scale(ec.scale_to_hex(0.0123))
        == struct.unpack(">f", struct.pack(">f", 0.0123))[0]
    )


def test_a_real_trtexec_style_cache_parses():
    text = "TRT-100300-EntropyCalibration2\ninput.1: 3c010a14\n/conv1/Conv_output_0: 3d8e1c2b\n"
    cache = ec.parse_cache(text)
    assert cache.scales["input.1"] == pytest.approx(0.007876, rel=1e-3)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cache\n",
        "TRT-100300-EntropyCalibration2\nimage 3c010a14\n",
        "TRT-1-X\nimage: 3c01\n",
    ],
)
def test_malformed_caches_are_one_line_errors(text):
    with pytest.raises(EngineBuilderError) as err:
        ec.parse_cache(text, "bad.cache")
    assert "\n" not in str(err.value) and "bad.cache" in str(err.value)


def test_other_algorithms_and_missing_files_are_refused(tmp_path):
    p = tmp_path / "minmax.cache"
    p.write_text("TRT-100300-MinMaxCalibration\nimage: 3c010a14\n")
    with pytest.raises(EngineBuilderError, match="EntropyCalibration2"):
        ec.read_cache(p)
    with pytest.raises(EngineBuilderError, match="not found"):
        ec.read_cache(tmp_path / "none.cache")


def test_entropy_threshold_clips_outliers_but_not_a_uniform_distribution():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=200_000))
    x[:3] = 40.0  # three outliers stretch the range tenfold
    amax = ec.entropy_amax(ec.abs_histogram(x, 40.0), 40.0)
    assert 2.0 < amax < 6.0
    u = rng.uniform(-1, 1, 100_000)
    assert ec.entropy_amax(ec.abs_histogram(u, 1.0), 1.0) == pytest.approx(1.0, abs=0.01)


def test_relu_zero_spike_does_not_collapse_the_threshold():
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=100_000), 0)  # half the values are exactly 0
    top = float(x.max())
    assert ec.entropy_amax(ec.abs_histogram(x, top), top) > 0.5 * top


def test_candidates_start_at_bin_128():
    hist = np.zeros(2048, np.int64)
    hist[:10] = 100  # all mass in the first bins: nothing to clip
    assert ec.entropy_amax(hist, 2048.0) == pytest.approx(10.0)


def test_percentile_max_and_degenerate_inputs():
    hist = np.zeros(2048, np.int64)
    hist[:1000] = 1
    assert ec.percentile_amax(hist, 2048.0, 50.0) == pytest.approx(500.0)
    assert ec.amax_from_histogram(hist, 3.0, "max", 99.0) == 3.0
    assert ec.entropy_amax(np.zeros(2048), 0.0) == ec.MIN_AMAX
    with pytest.raises(EngineBuilderError):
        ec.amax_from_histogram(hist, 1.0, "kl", 99.0)
    assert ec.scales_from_amax({"a": 127.0}) == {"a": 1.0}
