"""``synthctl plan`` and the measured render busy ratio (issue #25 item 3).

GPU time per sample is the render time over the share of a pod's time inside Blender's render
call: the ``--render-busy-ratio`` flag, else the planned object's ``status.renderBusyRatio`` (as
``kubectl get sds NAME -o yaml`` prints it), else 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from builders import SMALL, manifest, wire
from click.testing import CliRunner

from parallel_synth.commands.cli import cli

SPEC = wire(SMALL, samples=1_000_000, shardSize=1000, output={"uri": "s3://bucket/x"}, image="img",
            estimates={"gpuSecondsPerSample": 6})


def plan(tmp_path: Path, *args: str, status: dict[str, object] | None = None) -> dict[str, object]:
    doc = manifest(SPEC, name="ds")
    if status is not None:
        doc["status"] = status
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(cli, ["plan", str(path), "--json", *args])
    assert res.exit_code == 0, res.output
    out: dict[str, object] = json.loads(res.output)
    return out


def busy(doc: dict[str, object]) -> dict[str, object]:
    return next(a for a in doc["assumptions"] if a["name"] == "renderBusyRatio")  # type: ignore[attr-defined,index]


def test_the_measured_ratio_makes_each_sample_cost_more_gpu_time(tmp_path: Path) -> None:
    none = plan(tmp_path)
    base = float(none["gpuSecondsPerSample"])  # type: ignore[arg-type]  # 6 s plus the simulations' bake
    assert base >= 6 and busy(none)["source"] == "default"
    measured = plan(tmp_path, status={"phase": "Running", "renderBusyRatio": 0.75})
    assert measured["gpuSecondsPerSample"] == pytest.approx(base / 0.75)
    assert measured["gpuHours"] == pytest.approx(none["gpuHours"] / 0.75)  # type: ignore[operator]
    assert busy(measured) == {"name": "renderBusyRatio", "value": 0.75, "source": "measured (status.renderBusyRatio)",
                              "note": "GPU time per sample = render time / ratio"}
    flag = plan(tmp_path, "--render-busy-ratio", "0.5", status={"renderBusyRatio": 0.75})
    assert flag["gpuSecondsPerSample"] == pytest.approx(base / 0.5) and busy(flag)["source"] == "flag"


@pytest.mark.parametrize("value", [0, 1.5, "high", True, None])
def test_an_unsound_status_value_is_not_a_measurement(tmp_path: Path, value: object) -> None:
    doc = plan(tmp_path, status={"renderBusyRatio": value})
    assert doc["gpuSecondsPerSample"] == plan(tmp_path)["gpuSecondsPerSample"] and busy(doc)["source"] == "default"


@pytest.mark.parametrize("value", ["0", "1.2", "nan"])
def test_the_flag_refuses_ratios_outside_0_to_1(tmp_path: Path, value: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(manifest(SPEC, name="ds")))
    res = CliRunner().invoke(cli, ["plan", str(path), "--render-busy-ratio", value])
    assert res.exit_code == 2 and "--render-busy-ratio" in res.output
