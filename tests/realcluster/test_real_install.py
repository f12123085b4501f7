"""Both install paths on a real kube-apiserver: the Helm chart and ``kubectl apply -k manifests/``.

Each is installed, checked (every object accepted, the operator's ServiceAccount may do exactly
what the operator calls), and removed; nothing it made may be left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from localcluster import ROOT, LocalCluster
from operator_proc import OPERATOR_NS, RELEASE, helm, install_chart, running_operator

from parallel_synth.cluster.kube import API_CALLS

CLUSTER_SCOPED = ("nodes", "namespaces", "customresourcedefinitions", "clusterkopfpeerings")


def _owned(cluster: LocalCluster, selector: str) -> list[str]:
    """Every object (any kind, any namespace) carrying the label selector."""
    kinds = cluster.kubectl("api-resources", "--verbs=list", "-o", "name").split()
    wanted = [k for k in kinds if k.split(".")[0] not in ("events", "componentstatuses")]
    out = cluster.kubectl("get", ",".join(wanted), "-A", "-l", selector, "-o", "name", check=False)
    return sorted(line for line in out.split() if line)


def _can(cluster: LocalCluster, who: str, verb: str, resource: str, namespace: str) -> bool:
    group_resource, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, group_resource, "--as", who]
    if sub:
        args += ["--subresource", sub]
    if group_resource.split(".")[0] not in CLUSTER_SCOPED:
        args += ["-n", namespace]
    return cluster.run(*args, check=False).stdout.strip() == "yes"


def test_helm_install_grants_what_the_operator_calls_and_uninstall_leaves_nothing(
        crds: LocalCluster, tmp_path: Path, namespace: str) -> None:
    install = install_chart(crds, tmp_path)
    try:
        who = f"system:serviceaccount:{OPERATOR_NS}:{install.service_account}"
        missing = []
        for group, resource, verb in API_CALLS:
            if resource == "kopfpeerings":
                continue  # the cluster-wide install peers through ClusterKopfPeering
            target = resource if not group else f"{resource.split('/')[0]}.{group}" + (
                f"/{resource.split('/')[1]}" if "/" in resource else "")
            if not _can(crds, who, verb, target, namespace):
                missing.append(f"{verb} {target}")
        assert not missing, f"the chart's RBAC lacks: {missing}"
        assert not _can(crds, who, "get", "secrets", namespace), "the operator must not read Secrets"
        assert not _can(crds, who, "create", "pods", namespace), "the operator must not create pods directly"
        # The token works as that identity against the API server (not only in `can-i`).
        own = crds.run("get", "sds", "-A", kubeconfig=install.kubeconfig, check=False)
        assert own.returncode == 0, own.stderr
        denied = crds.run("get", "secrets", "-n", namespace, kubeconfig=install.kubeconfig, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
        # The operator runs as that ServiceAccount and answers /healthz (kopf's start-up calls pass RBAC).
        with running_operator(install, tmp_path / "operator.log", "-A") as op:
            assert op.healthy()
            assert "parallelsynth" in op.metrics()
    finally:
        helm(crds, "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "120s")
    left = _owned(crds, f"app.kubernetes.io/instance={RELEASE}")
    assert left == [], f"helm uninstall left: {left}"


def test_kustomize_install_is_accepted_and_delete_leaves_nothing(crds: LocalCluster) -> None:
    rendered = crds.kubectl("kustomize", str(ROOT / "manifests"))
    # Server-side apply: every object through the real admission chain and schema validation.
    crds.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=rendered)
    objs = [json.loads(line) for line in crds.kubectl(
        "get", "-f", "-", "-o", "jsonpath={range .items[*]}{@}{\"\\n\"}{end}",
        input_text=rendered).splitlines() if line.strip()]
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy"} <= kinds, kinds
    # Delete everything but the CRDs (other tests use them), then nothing of ours is left.
    non_crd = "\n---\n".join(doc for doc in rendered.split("\n---\n") if "kind: CustomResourceDefinition" not in doc)
    crds.kubectl("delete", "-f", "-", "--wait=true", "--timeout=120s", input_text=non_crd)
    crds.wait(f"namespace/{OPERATOR_NS}", "delete", timeout=120)
    left = [n for n in _owned(crds, "app.kubernetes.io/part-of=parallel-synth") if "customresourcedefinition" not in n]
    assert left == [], f"kubectl delete -k left: {left}"


@pytest.mark.parametrize("doc", ["examples/quickstart.yaml", "e2e/dataset.yaml"])
def test_manifests_users_apply_pass_server_side_dry_run(crds: LocalCluster, namespace: str, doc: str) -> None:
    text = (ROOT / doc).read_text()
    proc = crds.run("apply", "--dry-run=server", "--server-side", "-n", namespace, "-f", "-",
                    input_text=text.replace("namespace: synth-e2e", f"namespace: {namespace}"), check=False)
    assert proc.returncode == 0, proc.stderr
