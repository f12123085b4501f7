"""The renderer pods the operator asks for are locked down (checked on the Job it builds).

Non-root user, no service-account token, read-only root filesystem with an emptyDir for
scratch, no privilege escalation, all capabilities dropped, no host namespaces or host paths,
and S3 credentials only through ``secretKeyRef`` to the dataset's named Secret: never a literal
value in the Job (the operator never even reads the Secret). The operator's RBAC is tested
against ``kube.API_CALLS`` elsewhere (tests/install); here we check what it sends.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import SMALL, batch_spec, render_job, spec

SECRET = "renderer-s3"
CRED_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


OUTPUT = {"uri": "s3://bucket/prefix", "endpointUrl": "https://minio.example:9000", "credentialsSecret": SECRET}


def job_for(**output: Any) -> dict[str, Any]:
    """The Job of a 100-sample dataset whose output is OUTPUT with ``output`` changed."""
    s = spec(SMALL, samples=100, shardSize=10, image="ghcr.io/parallel-synth/renderer:1", output={**OUTPUT, **output})
    return render_job(s, parallelism=2, owner_uid="u-1")


@pytest.fixture
def pod() -> dict[str, Any]:
    tmpl: dict[str, Any] = job_for()["spec"]["template"]["spec"]
    return tmpl


def test_runs_as_non_root(pod: dict[str, Any]) -> None:
    psc = pod.get("securityContext") or {}
    assert psc.get("runAsNonRoot") is True
    assert psc.get("runAsUser", 1) != 0
    for c in pod["containers"]:
        csc = c.get("securityContext") or {}
        assert csc.get("runAsUser", psc.get("runAsUser")) != 0
        assert csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True


OPERATOR_SERVICE_ACCOUNT = "parallel-synth-operator"
"""The operator's own identity (manifests/base/deployment.yaml): renderer pods must never borrow it."""


def test_no_service_account_token(pod: dict[str, Any]) -> None:
    assert pod.get("automountServiceAccountToken") is False
    assert pod.get("serviceAccountName") != OPERATOR_SERVICE_ACCOUNT, "pods must not run with the operator's RBAC"
    for v in pod.get("volumes") or []:
        assert "serviceAccountToken" not in json.dumps(v), "no projected service-account token either"


def test_read_only_root_filesystem_with_scratch_on_an_empty_dir(pod: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for c in pod["containers"]:
        csc = c.get("securityContext") or {}
        assert csc.get("readOnlyRootFilesystem") is True
        assert csc.get("allowPrivilegeEscalation") is False
        assert csc.get("privileged") in (None, False)
        assert "ALL" in ((csc.get("capabilities") or {}).get("drop") or [])
        assert not (csc.get("capabilities") or {}).get("add")
        for m in c.get("volumeMounts") or []:
            # scratch on an emptyDir; the spec (issue #22 item 8) from a ConfigMap, read-only
            ok = "emptyDir" in volumes[m["name"]] or ("configMap" in volumes[m["name"]] and m.get("readOnly"))
            assert ok, f"{m['mountPath']} must be an emptyDir (or a read-only ConfigMap)"
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        # Everything that writes (HOME, TMPDIR) points into a writable mount.
        mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
        for var in ("HOME", "TMPDIR"):
            if env.get(var):
                assert any(env[var] == m or env[var].startswith(m + "/") for m in mounts), var


def test_no_host_access(pod: dict[str, Any]) -> None:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key)
    assert not [v for v in pod.get("volumes") or [] if "hostPath" in v]
    assert all(not (c.get("ports") or []) or all("hostPort" not in p for p in c["ports"])
               for c in pod["containers"])


def test_credentials_only_from_the_named_secret(pod: dict[str, Any]) -> None:
    for c in pod["containers"]:
        creds = [e for e in c.get("env") or [] if e["name"] in CRED_KEYS]
        assert {e["name"] for e in creds} >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        for e in creds:
            assert "value" not in e, f"{e['name']} must not be a literal value"
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET
        assert not c.get("envFrom"), "no bulk import of a Secret or ConfigMap"


def test_no_credentials_without_a_secret() -> None:
    tmpl = job_for(credentialsSecret=None)["spec"]["template"]["spec"]
    names = {e["name"] for c in tmpl["containers"] for e in c.get("env") or []}
    assert not names & set(CRED_KEYS), "no secret named: the pod uses its workload identity, nothing else"


def test_spec_json_in_the_pod_carries_no_credentials(pod: dict[str, Any]) -> None:
    from parallel_synth.decisions.jobs import JobRequest, Owner, build_spec_configmap

    s = spec(SMALL, samples=100, shardSize=10, image="ghcr.io/parallel-synth/renderer:1", output=OUTPUT)
    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b0", batch_spec=batch_spec(), attempt=1,
                     shard_offset=0, completions=10, parallelism=2)
    spec_json = json.loads(build_spec_configmap(req, s, Owner("RenderBatch", "ds-b0", "u-1"))["data"]["spec.json"])
    text = json.dumps(spec_json).lower()
    for word in ("secretaccesskey", "aws_secret", "password", "token"):
        assert word not in text
    assert spec_json["output"]["credentialsSecret"] == SECRET  # the name only
