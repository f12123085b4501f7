"""scripts/local-cluster.sh under faults: each names the component, the command and its log, and
never leaves a half-started cluster (no process of it survives, ``down`` stays idempotent)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from localcluster import SCRIPT

TOOLS = Path(os.environ.get("PARALLEL_SYNTH_TOOLS", Path.home() / ".cache" / "parallel-synth"))


def _script(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


def _processes_of(d: Path) -> list[str]:
    """Command lines of live processes started for the cluster in ``d`` (its paths are in them)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(d) in cmd and "pytest" not in cmd and "local-cluster.sh" not in cmd:
                out.append(cmd)
    return out


def test_a_component_that_fails_to_start_is_named_with_its_command_and_log_and_nothing_is_left(tmp_path: Path) -> None:
    proc = _script("up", str(tmp_path), "--gpu-nodes", "0", "--spot-nodes", "0",
                   env={"APISERVER_EXTRA_ARGS": "--no-such-flag-for-this-test"})
    assert proc.returncode == 1
    assert "kube-apiserver exited before it became ready" in proc.stderr
    assert "command: " in proc.stderr and "--no-such-flag-for-this-test" in proc.stderr
    assert "unknown flag" in proc.stderr, "the last lines of the component's log"
    assert _processes_of(tmp_path) == [], "etcd (already started) must have been stopped"
    assert list((tmp_path / "pids").iterdir()) == []
    assert _script("down", str(tmp_path)).returncode == 0


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _script("up", str(tmp_path), env={"APISERVER_PORT": str(port)})
    assert proc.returncode == 1
    assert f"kube-apiserver cannot start: port {port} on 127.0.0.1 is in use" in proc.stderr
    assert _processes_of(tmp_path) == []


def test_a_module_the_proxy_does_not_serve_fails_the_build_naming_it(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for cached in ("etcd-v3.6.16", "k8s-v1.36.3"):  # reuse what is built; only kwok is built anew
        (tools / cached).symlink_to(TOOLS / cached)
    proc = _script("build", env={"PARALLEL_SYNTH_TOOLS": str(tools), "KWOK_VERSION": "v0.0.999"})
    assert proc.returncode == 1
    assert "building kwok-v0.0.999 failed" in proc.stderr
    assert "sigs.k8s.io/kwok/cmd/kwok@v0.0.999" in proc.stderr
    assert not (tools / "kwok-v0.0.999" / ".done").exists(), "a failed build is never taken as built"


def test_bad_options_are_refused_with_the_allowed_ones(tmp_path: Path) -> None:
    proc = _script("up", str(tmp_path), "--gpu-nodes", "many")
    assert proc.returncode == 1 and "whole numbers" in proc.stderr
    proc = _script("up", str(tmp_path), "--frobnicate")
    assert proc.returncode == 1 and "unknown option '--frobnicate'" in proc.stderr and "--kueue" in proc.stderr
    assert _script("down", str(tmp_path / "never-started")).returncode == 0
