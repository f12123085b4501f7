"""Malformed SynthDataset manifests fed to ``synthctl validate-manifest`` (a real subprocess).

Each case must be refused with a non-zero exit and a message that names the field (or the
reason the file cannot be read), never a Python traceback, and within a few seconds (no YAML
bomb expansion, no runaway recursion).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import SMALL, manifest, wire, with_field

SYNTHCTL = str(Path(sys.executable).parent / "synthctl")

GOOD = manifest(wire(SMALL, samples=100, shardSize=10, output={"uri": "s3://my-bucket/data"}), name="tiny")


def with_(path: str, value: Any) -> str:
    """GOOD with one dotted path set to ``value``, as YAML."""
    return yaml.safe_dump(with_field(GOOD, path, value), allow_unicode=True)


BILLION_LAUGHS = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["apiVersion: parallelsynth.io/v1alpha1", "kind: SynthDataset", "metadata: {name: bomb}",
       "spec: {samples: 1, output: {uri: 's3://my-bucket/x'}, image: '*i'}"]
)

# (id, file content, text the error output must contain)
CASES: list[tuple[str, str | bytes, str]] = [
    ("samples-wrong-type", with_("spec.samples", "lots"), "spec.samples"),
    ("samples-float", with_("spec.samples", 10.5), "spec.samples"),
    ("samples-zero", with_("spec.samples", 0), "spec.samples"),
    ("samples-negative", with_("spec.samples", -5), "spec.samples"),
    ("samples-astronomic", with_("spec.samples", 10**30), "spec.samples"),
    ("seed-negative", with_("spec.seed", -1), "spec.seed"),
    ("shardsize-zero", with_("spec.shardSize", 0), "spec.shardSize"),
    ("unknown-field", with_("spec.sampels", 3), "spec.sampels: unknown field"),
    ("unknown-nested-field", with_("spec.render.resolution", 512), "spec.render.resolution: unknown field"),
    ("width-too-large", with_("spec.render.resolutions", [{"width": 100000, "height": 64}]),
     "spec.render.resolutions[0].width"),
    ("spp-min-over-max", with_("spec.render.samples", {"min": 64, "max": 8}), "spec.render.samples"),
    ("workers-min-over-max", with_("spec.workers", {"min": 5, "max": 2}), "spec.workers"),
    ("category-unknown", with_("spec.categories", [{"name": "dragons"}]), "spec.categories[0].name"),
    ("category-repeated", with_("spec.categories", [{"name": "geometry"}, {"name": "geometry"}]),
     "spec.categories"),
    ("weights-all-zero", with_("spec.categories", [{"name": "geometry", "weight": 0}]), "spec.categories"),
    ("passes-without-rgb", with_("spec.render.passes", ["depth"]), "spec.render.passes"),
    ("uri-http", with_("spec.output.uri", "http://example.com/data"), "spec.output.uri"),
    ("uri-relative-file", with_("spec.output.uri", "file://relative/path"), "spec.output.uri"),
    ("secret-name-not-dns", with_("spec.output.credentialsSecret", "My_Secret"), "spec.output.credentialsSecret"),
    ("image-huge-string", with_("spec.image", "r" * 100_000), "spec.image"),
    ("uri-huge-string", with_("spec.output.uri", "s3://my-bucket/" + "p" * 5000), "spec.output.uri"),
    ("name-unicode", with_("metadata.name", "datasét-ünïcode"), "metadata.name"),
    ("name-emoji", with_("metadata.name", "🚀"), "metadata.name"),
    ("name-too-long", with_("metadata.name", "a" * 64), "metadata.name"),
    ("name-uppercase", with_("metadata.name", "MyDataset"), "metadata.name"),
    ("deadline-past", with_("spec.throughput.deadline", "2001-01-01T00:00:00Z"), "spec.throughput.deadline"),
    ("deadline-garbage", with_("spec.throughput.deadline", "next tuesday"), "spec.throughput.deadline"),
    ("wrong-kind-api", with_("apiVersion", "parallelsynth.io/v9"), "apiVersion"),
    ("spec-is-a-list", with_("spec", [1, 2, 3]), "spec"),
    ("missing-output", yaml.safe_dump({**GOOD, "spec": {"samples": 1, "image": "r:1"}}), "spec.output"),
    ("document-is-a-string", "just a string\n", "mapping"),
    ("empty-file", "", "cannot read manifest"),
    ("yaml-syntax-error", "spec: {samples: [1, 2\n", "cannot read manifest"),
    ("yaml-bomb-aliases", BILLION_LAUGHS, "aliases are not allowed"),
    ("yaml-python-tag", "!!python/object/apply:os.system ['touch /tmp/pwned-by-manifest']\n", "cannot read manifest"),
    ("yaml-deep-nesting", "[" * 20000 + "]" * 20000 + "\n", "cannot read manifest"),
    ("too-large-file", "# " + "x" * 1_100_000 + "\n" + with_("spec.samples", 1), "larger than"),
    ("invalid-utf8", b"apiVersion: parallelsynth.io/v1alpha1\nkind: SynthDataset\nname: \xff\xfe\xfa\n",
     "cannot read manifest"),
    ("nul-bytes", "apiVersion: parallelsynth.io/v1alpha1\x00\nkind: SynthDataset\n", "cannot read manifest"),
]


def run_validate(tmp_path: Path, content: str | bytes) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "manifest.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return subprocess.run([SYNTHCTL, "validate-manifest", str(path)], capture_output=True, text=True,
                          timeout=60, errors="replace")


def test_the_good_manifest_passes(tmp_path: Path) -> None:
    proc = run_validate(tmp_path, yaml.safe_dump(GOOD))
    assert proc.returncode == 0, proc.stderr
    assert "valid SynthDataset 'tiny'" in proc.stdout


@pytest.mark.parametrize(("content", "expected"), [(c, e) for _, c, e in CASES], ids=[i for i, _, _ in CASES])
def test_bad_manifest_is_refused_with_a_clear_message(tmp_path: Path, content: str | bytes, expected: str) -> None:
    proc = run_validate(tmp_path, content)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert "Traceback" not in out, out
    assert len(out) < 20_000, "the message must stay readable (no echo of a huge input)"


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    proc = run_validate(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert proc.returncode != 0
    assert not marker.exists()
