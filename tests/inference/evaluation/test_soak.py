"""The soak's drift: a Theil-Sen slope per hour over the trace's second half, checked against known lines."""

import pytest

from inference.evaluation.soak import drift, run_traffic


def trace_of(values: list[float], every: float = 60.0) -> list[dict]:
    return [{"seconds": every * (i + 1), "rss_mib": v} for i, v in enumerate(values)]


def test_drift_is_the_slope_per_hour_of_a_straight_line():
    # 0.5 MiB a minute is 30 MiB an hour; a noiseless line has a zero-width interval.
    slope = drift(trace_of([600 + 0.5 * i for i in range(20)]), "rss_mib")
    assert slope == {"slope": pytest.approx(30.0), "low": pytest.approx(30.0), "high": pytest.approx(30.0)}


def test_drift_ignores_the_first_half_and_an_odd_outlier():
    start_up = [400 + 50 * i for i in range(10)]  # allocations while the server warms up
    settled = [900.0] * 10
    settled[6] = 5000.0  # one slow sample
    slope = drift(trace_of(start_up + settled), "rss_mib")
    assert slope["slope"] == 0.0 and slope["low"] <= 0.0 <= slope["high"]


def test_drift_needs_four_samples_in_the_second_half_and_skips_empty_intervals():
    assert drift(trace_of([1.0] * 6), "rss_mib") is None  # the second half holds 3
    assert drift(trace_of([1.0] * 7), "rss_mib") is not None  # and here 4
    rows = trace_of([1.0] * 10)
    for row in rows[5:7]:
        row["rss_mib"] = None  # an interval with no answer has no latency
    assert drift(rows, "rss_mib") is None


def test_a_trace_needs_a_server_to_sample():
    with pytest.raises(ValueError, match="server_pid"):
        run_traffic("http://127.0.0.1:1", [], [], 1, 1.0, {"good": 1.0}, trace_every=1.0)
    with pytest.raises(ValueError, match="trace_every"):
        run_traffic("http://127.0.0.1:1", [], [], 1, 1.0, {"good": 1.0}, server_pid=1, trace_every=-1.0)
