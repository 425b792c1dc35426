"""The benchmark suite's smoke run (the full run is `catalogvlm bench`)."""

from __future__ import annotations

import re

import pytest

from catalogvlm.bench import suite

pytestmark = pytest.mark.server


def test_quick_bench_measures_every_section():
    report = suite.run(quick=True)
    headings = ("## 1. Serving overhead", "## 2. CPU profile end to end", "## 3. Triton vs. Dynamo",
                "## 4. Qwen2-VL preprocessing", "## 5. Taxonomy correction", "## 6. Pipeline concurrency",
                "## 7. Bulk pipeline", "## 8. Overload")  # fmt: skip
    for heading in headings:
        assert heading in report
    ratio = float(re.search(r"Zero-work pipeline / echo hop throughput: \*\*([0-9.]+)×", report).group(1))
    assert 0 < ratio < 10
    row = r"^\| (zero-work|single|CPU profile|triton|dynamo)[^|]*\| (\d+) \| (\d+) \| (\d+) \| ([0-9.]+) \|"
    rows = re.findall(row, report, re.M)
    assert len(rows) >= 8
    assert {name for name, *_ in rows} >= {"triton", "dynamo"}
    assert all(int(requests) > 0 and int(errors) == 0 for _, _, requests, errors, _ in rows)
    assert "CPU ms per request, zero-work two-stage pipeline:" in report
    assert re.search(r"\| catalogvlm CategoryCorrector \| 0\.9\d\d \|", report)
    # prompt ids: equal to Hugging Face's tokenizer on the expanded prompt, for every image size
    assert (
        re.findall(r"^\| 1×\d+×\d+ \| \d+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+× \| (\w+) \|$", report, re.M) == ["True"] * 3
    )
    # pipeline concurrency: both backends at both loads, no errors, a measured fraction of the ideal
    concurrency = re.findall(
        r"^\| (triton|dynamo) \| (16|64) \| (\d+) \| (\d+) \| [0-9.]+ \| [0-9.]+ \| \*\*([0-9.]+)×", report, re.M
    )
    assert len(concurrency) == 4
    assert all(
        int(products) > 0 and int(errors) == 0 and 0 < float(ratio) <= 1.2
        for *_, products, errors, ratio in concurrency
    )
    # bulk pipeline: every product predicted, then only the changed tenth, each measured against Locust
    bulk = re.findall(r"^\| (all products|\d+ changed \(10%\)) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", report, re.M)
    assert [(int(n), int(p), int(c), int(d)) for _, n, p, c, d in bulk] == [(300, 300, 0, 0), (300, 30, 270, 0)]
    saturated = r"Server's saturated rate \(Locust, \d+ users, same products\): \*\*[1-9][0-9.]* products/s"
    assert re.search(saturated, report)
    # overload: each phase answered something, nothing ended other than answered or refused, throughput came back
    phases = re.findall(r"^\| (before|burst|after) \| (\d+) \| ([0-9.]+) \| .* \| (\d+) \|$", report, re.M)
    assert [(phase, int(users)) for phase, users, *_ in phases] == [("before", 4), ("burst", 16), ("after", 4)]
    assert all(float(answered) > 0 and int(failed) == 0 for *_, answered, failed in phases)
    assert re.search(r"Throughput after the burst / before it: \*\*[0-9.]+×", report)
