"""``synthctl operator``: options a Deployment relies on."""

from __future__ import annotations

from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from parallel_synth.settings import Settings


def test_operator_command_exposes_the_documented_options() -> None:
    result = CliRunner().invoke(cli, ["operator", "--help"])
    assert result.exit_code == 0
    for option in ("--standalone", "--namespace", "--all-namespaces", "--liveness", "--metrics-port",
                   "--log-format"):
        assert option in result.output


def test_operator_refuses_to_guess_its_namespaces() -> None:
    result = CliRunner().invoke(cli, ["operator", "--standalone"])
    assert result.exit_code == 2
    assert "-A/--all-namespaces" in result.output


def test_settings_come_from_the_environment() -> None:
    s = Settings.from_env({"SYNTH_OPERATOR_BATCH_INTERVAL": "2.5", "SYNTH_OPERATOR_MAX_LIVE_BATCHES": "7",
                           "SYNTH_OPERATOR_CLUSTER_SCANNING": "false", "SYNTH_OPERATOR_DATASET_INTERVAL": "5",
                           "SYNTH_OPERATOR_ACTIVE_DEADLINE_SECONDS": "none", "SYNTH_SCALING_TOLERANCE": "0.2"})
    assert (s.operator.batch_interval, s.operator.max_live_batches, s.operator.cluster_scanning,
            s.pods.active_deadline_seconds) == (2.5, 7, False, None)
    assert (s.scaling.tolerance, s.scaling.tick_seconds) == (0.2, 5.0)  # the autoscaler ticks with the dataset
    assert Settings.from_env({}) == Settings()


def test_each_operator_variable_sets_one_field() -> None:
    """OperatorSettings, PodSettings and PolicySettings share the SYNTH_OPERATOR_ prefix: names must not clash."""
    import dataclasses

    from parallel_synth.settings import OperatorSettings, PodSettings, PolicySettings

    names = [f.name for cls in (OperatorSettings, PodSettings, PolicySettings) for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))
