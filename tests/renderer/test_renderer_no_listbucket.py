"""Output buckets whose policy does not grant ``s3:ListBucket`` (issue #22, item 11).

S3 then answers 403 AccessDenied, not 404, for a key that does not exist: the manifest of a shard
not rendered yet, its checkpoint. The store reads those as absent once it has shown that this
identity may read under the root; a 403 that is a refusal stays an error, and the worker exits 2
(bad configuration) on it, not 1 (a retry that cannot help).

moto enforces IAM policies but answers 404 for a missing key whatever the policy (and refuses
every HEAD, checking an action IAM does not have), so the policies are played by a front server
(``tests/s3_front.py``) between boto3 and a real moto server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import RENDER, wire
from s3_front import Policy, s3_front

from synth_contract import layout
from synth_contract.exitcodes import EXIT_BAD_CONFIG
from synth_contract.store import S3Store, StoreForbidden, make_s3_client

FAKE_WORKER = str(Path(__file__).with_name("fake_worker.py"))
NO_LIST = Policy(list_bucket=False)


def _store(endpoint: str, bucket: str, prefix: str) -> S3Store:
    return S3Store(make_s3_client(endpoint_url=endpoint), bucket, prefix, attempts=2, backoff=0.01)


def test_without_listbucket_a_missing_key_reads_as_absent(s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="data/ds/v1/manifests/00000000.json", Body=b"{}")
    with s3_front(s3_endpoint, NO_LIST) as front:
        store = _store(front, bucket, "data/ds/v1")
        raw = store.client.get_object  # the front does answer 403 for the missing key, as S3 does
        with pytest.raises(Exception, match="AccessDenied"):
            raw(Bucket=bucket, Key="data/ds/v1/manifests/00000001.json")
        assert store.read_bytes(layout.manifest_path(1)) is None
        assert store.size(layout.manifest_path(1)) is None and not store.exists(layout.manifest_path(1))
        assert store.etag(layout.checkpoint_meta_path(1)) is None
        assert not store.download_file(layout.checkpoint_path(1), Path(os.devnull))
        with pytest.raises(FileNotFoundError):
            store.open(layout.manifest_path(1))
        assert store.read_bytes(layout.manifest_path(0)) == b"{}" and store.exists(layout.manifest_path(0))
        assert store.forbidden_means_absent()
    probes = s3_client.list_objects_v2(Bucket=bucket, Prefix="data/ds/v1/.synth/").get("KeyCount", 0)
    assert probes == 0  # the read probe cleans up after itself


@pytest.mark.parametrize(
    ("policy", "why"),
    [
        (Policy(list_bucket=False, put_object=False), "read-only, no ListBucket: a 403 cannot be told from a refusal"),
        (Policy(get_object=False), "ListBucket but no GetObject: every 403 is a refusal"),
    ],
)
def test_a_403_that_is_a_refusal_is_an_error_naming_the_permissions(
        s3_endpoint: str, bucket: str, policy: Policy, why: str) -> None:
    with s3_front(s3_endpoint, policy) as front:
        store = _store(front, bucket, "data/ds/v1")
        with pytest.raises(StoreForbidden, match="s3:ListBucket") as err:
            store.read_bytes(layout.manifest_path(3))
        assert f"{store.uri}/manifests/00000003.json" in str(err.value), why
        assert not store.forbidden_means_absent(), why


def _worker(spec: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SYNTH_SPEC_JSON": json.dumps(spec), "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "FAKE_RENDER_SECONDS": "0", **env}
    return subprocess.run([sys.executable, FAKE_WORKER, "--dataset", "ds"], env=full, capture_output=True,
                          text=True, timeout=120)


def _events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_the_worker_renders_a_new_shard_without_listbucket(s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    """Before the fix, reading the manifest of the shard not rendered yet raised: every pod exited 1."""
    with s3_front(s3_endpoint, NO_LIST) as front:
        spec = wire(RENDER, output={"uri": f"s3://{bucket}/data", "endpointUrl": front})
        done = _worker(spec, {"JOB_COMPLETION_INDEX": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
        manifest = json.loads(s3_client.get_object(Bucket=bucket, Key="data/ds/v1/manifests/00000001.json")
                              ["Body"].read())
        assert manifest["samples"] == 4
        again = _worker(spec, {"JOB_COMPLETION_INDEX": "1"})
        assert again.returncode == 0 and any(e["event"] == "shard already committed" for e in _events(again.stderr))


def test_the_worker_exits_2_when_the_policy_refuses_reads(s3_endpoint: str, bucket: str) -> None:
    with s3_front(s3_endpoint, Policy(get_object=False)) as front:
        spec = wire(RENDER, output={"uri": f"s3://{bucket}/data", "endpointUrl": front})
        done = _worker(spec, {"JOB_COMPLETION_INDEX": "0"})
    assert done.returncode == EXIT_BAD_CONFIG, done.stderr[-3000:]
    last = _events(done.stderr)[-1]
    assert last["event"] == "bad configuration" and "s3:GetObject" in last["error"], last
