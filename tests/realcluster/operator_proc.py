"""The operator as users install it: the Helm chart's RBAC and ServiceAccount, ``synthctl operator``.

The chart is installed with ``helm`` (scripts/get-helm.sh) with ``operator.replicas=0``: the local
control plane has no kubelet for the operator's own Deployment, so the operator runs here as a
process (``synthctl operator``), **authenticated as the chart's ServiceAccount** with a token
from the TokenRequest API. Every call it makes is then authorised by the chart's (Cluster)Roles,
exactly as in a pod: a missing verb fails the tests that use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localcluster import ROOT, LocalCluster

SYNTHCTL = str(Path(sys.executable).parent / "synthctl")
RELEASE = "ps"
OPERATOR_NS = "parallel-synth"

# Fast loops for tests (the defaults suit a fleet: 15 s / 10 s).
FAST = {
    "SYNTH_OPERATOR_DATASET_INTERVAL": "2",
    "SYNTH_OPERATOR_BATCH_INTERVAL": "2",
    "SYNTH_OPERATOR_INITIAL_DELAY": "0.2",
    "SYNTH_OPERATOR_RETRY_BACKOFF_SECONDS": "2",
    "SYNTH_OPERATOR_TERMINATION_GRACE_SECONDS": "20",
}


def helm_binary() -> str:
    local = ROOT / "tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "get-helm.sh")], check=True, capture_output=True,
                         text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


def helm(cluster: LocalCluster, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm_binary(), "--kubeconfig", str(cluster.kubeconfig), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} (exit {proc.returncode}): {proc.stderr[-3000:]}")
    return proc


@dataclass
class Install:
    """A chart release: the operator's ServiceAccount and a kubeconfig that authenticates as it."""

    namespace: str
    service_account: str
    kubeconfig: Path


def install_chart(cluster: LocalCluster, workdir: Path, *values: str) -> Install:
    helm(cluster, "upgrade", "--install", RELEASE, str(ROOT / "charts" / "parallel-synth"), "-n", OPERATOR_NS,
         "--create-namespace", "--set", "operator.replicas=0", *values, "--wait", "--timeout", "120s")
    deploys = cluster.get("deployments", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/component=operator")["items"]
    assert deploys, "the chart made no operator Deployment"
    sa = deploys[0]["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = cluster.token_kubeconfig(OPERATOR_NS, sa, workdir / "operator.kubeconfig")
    return Install(namespace=OPERATOR_NS, service_account=sa, kubeconfig=kubeconfig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Operator:
    proc: subprocess.Popen[bytes]
    log: Path
    health_url: str
    metrics_port: int

    def healthy(self) -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(self.health_url, timeout=2) as r:
            return bool(r.status == 200)
        return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def logs(self, tail: int = 200) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-tail:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


def start_operator(install: Install, log: Path, *args: str, env: dict[str, str] | None = None) -> Operator:
    """``synthctl operator ARGS`` as the chart's ServiceAccount; returns once /healthz answers."""
    from waiting import wait_for

    health, metrics = _free_port(), _free_port()
    full_env = {**os.environ, **FAST, **(env or {}), "KUBECONFIG": str(install.kubeconfig),
                "SYNTH_OPERATOR_RENDERER_SERVICE_ACCOUNT": "parallel-synth-renderer"}
    out = log.open("ab")
    proc = subprocess.Popen([SYNTHCTL, "operator", *args, f"--liveness=http://127.0.0.1:{health}/healthz",
                             f"--metrics-port={metrics}"], stdout=out, stderr=subprocess.STDOUT, env=full_env,
                            start_new_session=True)
    op = Operator(proc=proc, log=log, health_url=f"http://127.0.0.1:{health}/healthz", metrics_port=metrics)
    wait_for(op.healthy, timeout=60, what=f"the operator's /healthz ({log})")
    assert proc.poll() is None, op.logs()
    return op


@contextlib.contextmanager
def running_operator(install: Install, log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Operator]:
    op = start_operator(install, log, *args, env=env)
    try:
        yield op
    finally:
        op.stop()


def events(cluster: LocalCluster, namespace: str) -> list[dict[str, object]]:
    return list(json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"])
