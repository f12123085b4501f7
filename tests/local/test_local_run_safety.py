"""`synthctl generate` on a shared machine: workers die with it, one run per output, files others can read.

Real subprocesses with the fake renderer; every wait is a poll on an observable state with a
bounded deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from builders import LOCAL, wire, write_manifest
from local_helpers import FAKE_RENDERER
from waiting import wait_for

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]
DEADLINE = 60.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process state from /proc")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # state, ppid, ...


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None and st[1] == str(pid):
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _start(manifest: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2", "--renderer", FAKE_RENDERER],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def slow_run(tmp_path: Path, subprocess_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """A generate run in progress (2 s per shard): (process, manifest, out, dataset root)."""
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "ignored"), name="tiny")
    out = tmp_path / "data"
    root = out / "tiny" / "v1"
    proc = _start(manifest, out, {**subprocess_env, "FAKE_RENDER_DELAY": "0.2"})
    logs = root / ".synth" / "logs"
    # a worker's log exists once it has armed its parent-death signal and loaded the renderer
    wait_for(lambda: len(list(logs.glob("worker-*.log"))) == 2, timeout=DEADLINE, what="both workers to start", proc=proc)
    yield proc, manifest, out, root
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_sigkill_of_generate_takes_its_workers_with_it(slow_run) -> None:  # type: ignore[no-untyped-def]
    proc, _, _, _ = slow_run
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers
    proc.send_signal(signal.SIGKILL)
    # before the fix this timed out: the orphaned workers kept generate's stdout pipe open
    proc.communicate(timeout=DEADLINE)
    wait_for(lambda: not any(_alive(p) for p in workers), timeout=DEADLINE, what="the orphaned workers to exit")


def test_a_second_generate_on_the_same_output_is_refused(slow_run, subprocess_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    proc, manifest, out, _ = slow_run
    second = subprocess.run(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "1", "--renderer", FAKE_RENDERER],
        env=subprocess_env, capture_output=True, text=True, timeout=DEADLINE, check=False,
    )
    assert second.returncode == 2, second.stderr
    assert f"pid {proc.pid} on host {socket.gethostname()}" in second.stderr
    assert "another `synthctl generate`" in second.stderr and "Traceback" not in second.stderr
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130
    # the lock went with the first run: a rerun finishes the dataset
    done = subprocess.run(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2", "--renderer", FAKE_RENDERER],
        env=subprocess_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_outputs_respect_the_umask_and_logs_stay_in_the_output(tmp_path: Path,
                                                               subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "ignored"), name="tiny")
    out = tmp_path / "data"
    old = os.umask(0o022)
    try:
        res = subprocess.run(
            [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2", "--renderer", FAKE_RENDERER],
            env=subprocess_env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        os.umask(old)
    assert res.returncode == 0, res.stderr
    root = out / "tiny" / "v1"
    files = [p for p in root.rglob("*") if p.is_file() and ".synth" not in p.parts]
    assert any(p.suffix == ".tar" for p in files) and any(p.name == "dataset.json" for p in files)
    modes = {p.relative_to(root).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes
    assert f"logs in {root / '.synth' / 'logs'}" in res.stdout
    assert sorted(p.name for p in (root / ".synth" / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]
