"""bench_attention.py on the CPU: its settings and the median it reports (the timings need a GPU)."""

import pytest

import bench_attention


def test_median_over_rounds_and_out_of_memory():
    assert bench_attention.median_time([0.31, 0.29, 0.52]) == 0.31  # one slow round does not count
    assert bench_attention.median_time([0.4]) == 0.4
    assert bench_attention.median_time([0.2, 0.4]) == pytest.approx(0.3)  # an even count: the mean of the middle two
    assert bench_attention.median_time([0.3, "oom", 0.3]) == "oom"


def test_bad_rounds_is_one_line_error():
    with pytest.raises(SystemExit, match="--rounds must be at least 1, got 0"):
        bench_attention.main(["--rounds=0"])
