"""What ``synthctl validate`` finds: problems, the options that set how strict it is, and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from parallel_synth.dataset.files import MAX_JSON_BYTES, check_regular, read, strict_json
from parallel_synth.dataset.images import MAX_PIXELS
from parallel_synth.dataset.tars import MAX_MEMBER_BYTES
from synth_contract.store import Store
from synth_contract.validation import one_line

MAX_LISTED_PROBLEMS = 1000
"""Problems kept in the report; the count covers all of them."""



@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: a short code, where, and what."""

    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.message}"


@dataclass
class CheckOptions:
    """How strict to be."""

    min_quality: float | None = None
    """Score a sample needs to pass; default: the spec's ``quality.minScore``."""
    min_pass_rate: float | None = None
    """Required fraction of passing samples; default: the spec's ``quality.minPassRate``."""
    max_member_bytes: int = MAX_MEMBER_BYTES
    require_index: bool = True
    sample: int | None = None
    """Check only this many shards, picked at random among those present (``None``: all)."""
    seed: int | None = None
    """Seed of that random pick (``None``: a different pick each run)."""
    max_pixels: int = MAX_PIXELS
    """Images larger than this (width x height) are problems, judged from their header alone."""
    decode_images: bool = True


@dataclass
class Report:
    """What ``validate`` found; ``to_json`` is the CI report."""

    root: str
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    shards_expected: int = 0
    shards_checked: int = 0
    samples: int = 0
    bytes: int = 0
    scored: int = 0
    passed: int = 0
    min_quality: float | None = None
    min_pass_rate: float | None = None
    categories: dict[str, int] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)
    dataset: str | None = None
    quarantined: int = 0
    """Samples held back by the quality gate (under ``quarantine/``, not in the shards)."""
    quarantined_categories: dict[str, int] = field(default_factory=dict)
    segments: dict[int, dict[str, int]] = field(default_factory=dict)
    """Samples found (shards plus quarantine) per category, per schedule segment (by its fromShard)."""
    segment_targets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    sampled: bool = False

    def add(self, code: str, where: str, message: str, *, count: int = 1) -> None:
        """One problem (``count`` > 1: one line standing for that many of the same kind)."""
        self.problem_count += count
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(code, where, message))

    def to_json(self) -> dict[str, Any]:
        total = sum(self.categories.values()) or 1
        target_total = sum(self.targets.values()) or 1
        names = list(self.targets) or sorted(self.categories)
        return {
            "dataset": self.dataset,
            "root": self.root,
            "ok": self.ok,
            "problemCount": self.problem_count,
            "problems": [asdict(p) for p in self.problems],
            "truncated": self.problem_count > len(self.problems),
            "shards": {"expected": self.shards_expected, "checked": self.shards_checked, "sampled": self.sampled},
            "samples": self.samples,
            "quarantined": self.quarantined,
            "segments": [{"fromShard": seg["fromShard"], "toShard": seg["toShard"],
                          "categories": {c: {"found": self.segments.get(seg["fromShard"], {}).get(c, 0), "target": t}
                                         for c, t in seg["categories"].items()}}
                         for seg in self.segment_targets],
            "bytes": self.bytes,
            "quality": {
                "minScore": self.min_quality,
                "minPassRate": self.min_pass_rate,
                "passRate": self.pass_rate,
                "scored": self.scored,
            },
            "categories": {
                c: {
                    "found": self.categories.get(c, 0),
                    "target": self.targets.get(c),
                    "share": self.categories.get(c, 0) / total,
                    "targetShare": self.targets[c] / target_total if c in self.targets else None,
                }
                for c in names
            },
        }


def read_json(files: Store, rel: str, report: Report, code: str) -> Any:
    try:
        check_regular(files, rel)
        size = files.size(rel)
        if size is not None and size > MAX_JSON_BYTES:
            report.add(code, rel, f"{size:,} bytes, more than the {MAX_JSON_BYTES:,} a JSON file here may have")
            return None
        return strict_json(read(files, rel, limit=MAX_JSON_BYTES))
    except RecursionError:
        report.add(code, rel, "not valid JSON: nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        report.add(code, rel, f"not valid JSON: {one_line(exc, 200)}")
    except OSError as exc:
        report.add(code, rel, f"cannot be read: {one_line(exc, 200)}")
    return None
