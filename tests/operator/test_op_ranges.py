"""Compact ranges: what appears in completedShards/failedShards."""

from __future__ import annotations

import pytest

from synth_contract import ranges


@pytest.mark.parametrize(
    ("text", "spans", "formatted"),
    [
        ("", [], ""),
        ("0-41,43", [(0, 41), (43, 43)], "0-41,43"),
        ("3,1,2", [(1, 3)], "1-3"),
        ("0-4,5-9", [(0, 9)], "0-9"),
        ("7, 0-2 ,1", [(0, 2), (7, 7)], "0-2,7"),
    ],
)
def test_parse_and_format(text: str, spans: list[tuple[int, int]], formatted: str) -> None:
    assert ranges.parse(text) == spans
    assert ranges.format_spans(spans) == formatted


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0-9", "3-4", "0-2,5-9"),
        ("0-9", "", "0-9"),
        ("0-9", "0-9", ""),
        ("0-3,10-12", "2-11", "0-1,12"),
    ],
)
def test_subtract(a: str, b: str, expected: str) -> None:
    assert ranges.format_spans(ranges.subtract(ranges.parse(a), ranges.parse(b))) == expected


def test_count_shift_clip_union() -> None:
    s = ranges.parse("0-41,43")
    assert ranges.count(s) == 43
    assert ranges.format_spans(ranges.shift(s, 100)) == "100-141,143"
    assert ranges.format_spans(ranges.clip(s, 40, 50)) == "40-41,43"
    assert ranges.format_spans(ranges.union(s, ranges.parse("42"))) == "0-43"


def test_bounded_text_keeps_status_small() -> None:
    every_other = [(i, i) for i in range(0, 20_000, 2)]
    text = ranges.bounded_text(every_other, max_spans=5)
    assert text.startswith("0,2,4,6,8,...(+9995 more)")
    assert ranges.parse_bounded(text) == [(0, 0), (2, 2), (4, 4), (6, 6), (8, 8)]


def test_bad_range_is_refused() -> None:
    with pytest.raises(ValueError):
        ranges.parse("9-3")


@pytest.mark.parametrize(
    ("retry_after", "attempt", "expected"),
    [("2", 0, 2.0), ("0", 1, 0.0), (None, 0, 0.5), (None, 2, 2.0), ("junk", 1, 1.0), ("3600", 0, 10.0)],
)
def test_api_retry_delay_honours_retry_after_within_bounds(retry_after: str | None, attempt: int, expected: float) -> None:
    from parallel_synth.cluster.kube import retry_delay

    assert retry_delay(retry_after, attempt) == expected


@pytest.mark.parametrize(
    ("resource", "namespace", "name", "expected"),
    [
        ("JOBS", "ns", "j", "/apis/batch/v1/namespaces/ns/jobs/j"),
        ("PODS", "ns", None, "/api/v1/namespaces/ns/pods"),
        ("NODES", None, "gke-spot-1", "/api/v1/nodes/gke-spot-1"),  # cluster-scoped
    ],
)
def test_api_paths(resource: str, namespace: str | None, name: str | None, expected: str) -> None:
    from parallel_synth.cluster import kube

    assert getattr(kube, resource).path(namespace, name) == expected
