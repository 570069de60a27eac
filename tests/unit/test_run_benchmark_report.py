"""benchmarks.run's report: growth from each N to the next, judged where an issue set a target."""

from __future__ import annotations

from benchmarks.run import READ_CASES, ReadResult, Result, checks_of, table


def result(database: str, runs: int, p50_ms: float) -> Result:
    reads = {key: ReadResult(p50_ms, p50_ms, 30, 100) for key, _, _ in READ_CASES}
    return Result(
        database, runs, reads=reads, worker_rss_mb=[90.0, 90.0], worker_peak_rss_mb=[95.0, 95.0]
    )


def test_growth_is_judged_from_each_size_to_the_next_against_its_own_target():
    results = [
        result("postgres", 100_000, 8.0),
        result("postgres", 2_000, 2.5),
        result("postgres", 10_000, 5.0),
    ]
    growth = {
        (check.column, check.what): check
        for check in checks_of(results)
        if check.what.endswith("growth ×")
    }
    assert {column for column, _ in growth} == {
        "postgres N=2,000→10,000",
        "postgres N=10,000→100,000",
    }
    # Every read case, the ones without a p50 target included.
    assert len(growth) == 2 * len(READ_CASES)
    small = growth[("postgres N=2,000→10,000", "compare growth ×")]
    large = growth[("postgres N=10,000→100,000", "compare growth ×")]
    assert (small.value, small.target, small.met) == (2.0, "≤ 2", True)
    assert (large.value, large.target, large.met) == (1.6, "≤ 1.5", False)


def test_a_pair_no_issue_set_a_target_for_is_shown_but_not_judged():
    results = [result("sqlite", 300, 2.0), result("sqlite", 10_000, 3.0)]
    assert not [check for check in checks_of(results) if check.what.endswith("growth ×")]
    report = table(results)
    assert "| growth of p50 | sqlite 300→10,000 |" in report
    assert "| `compare` 2 runs × 2 series | ×1.50 |" in report
