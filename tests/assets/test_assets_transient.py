"""Asset and environment URIs whose store fails: bad configuration (exit 2) or retryable (exit 1).

Issue #22, item 4: any listing error used to be ``Unreachable``, so the worker exited 2 and the
pod failure policy failed the whole Job (FailJob) on a connection reset or a throttled listing.
Only a URI that is wrong as written (missing bucket, access denied, empty, bad form) is bad
configuration; a store that did not answer this time is retried (exit 1) with a log event that
names the URI. Every case runs the worker process (``synth-render`` with the fake renderer) against
a real moto server, or against a server in front of it that fails the way S3 and networks do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from builders import RENDER, wire
from s3_front import Policy, answering, closed_port, resetting, s3_front

from synth_contract.exitcodes import EXIT_BAD_CONFIG, EXIT_ERROR
from synth_render.assets.fetch import AssetCache, Unavailable, Unreachable, fetch_file, list_uri

FAKE_WORKER = str(Path(__file__).parents[1] / "renderer" / "fake_worker.py")


@contextmanager
def _moto(upstream: str) -> Iterator[str]:
    yield upstream


def _closed(upstream: str) -> AbstractContextManager[str]:
    return _moto(closed_port())


Endpoint = Callable[[str], AbstractContextManager[str]]
TRANSIENT: list[tuple[str, Endpoint]] = [
    ("connection refused", _closed),
    ("connection reset", lambda upstream: resetting()),
    ("throttled (503 SlowDown)", lambda upstream: answering(503, "SlowDown")),
    ("server error (500 InternalError)", lambda upstream: answering(500, "InternalError")),
]
PERMANENT: list[tuple[str, Endpoint, str]] = [
    ("missing bucket", _moto, "missing"),
    ("access denied (no s3:ListBucket)", lambda upstream: s3_front(upstream, Policy(list_bucket=False)), "hdri"),
    ("empty prefix", _moto, "empty"),
]


def _worker(spec: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    env = {**os.environ, "SYNTH_SPEC_JSON": json.dumps(spec), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "JOB_COMPLETION_INDEX": "0",
           "FAKE_RENDER_SECONDS": "0"}
    done = subprocess.run([sys.executable, FAKE_WORKER, "--dataset", "ds"], env=env, capture_output=True, text=True,
                          timeout=180)
    return done.returncode, [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]


def _spec(bucket: str, endpoint: str, env_uri: str) -> dict[str, Any]:
    return wire(RENDER, output={"uri": f"s3://{bucket}/data", "endpointUrl": endpoint},
                assets={"environments": [{"uri": env_uri}]})


@pytest.fixture
def hdri_bucket(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(Bucket=bucket, Key="hdri/studio.hdr", Body=b"#?RADIANCE\n")
    return bucket


@pytest.mark.parametrize(("case", "endpoint"), TRANSIENT, ids=[c for c, _ in TRANSIENT])
def test_a_store_that_does_not_answer_is_retryable(case: str, endpoint: Endpoint, s3_endpoint: str,
                                                   hdri_bucket: str) -> None:
    uri = f"s3://{hdri_bucket}/hdri"
    with endpoint(s3_endpoint) as ep:
        code, events = _worker(_spec(hdri_bucket, ep, uri))
    assert code == EXIT_ERROR, (case, events[-1:])
    last = events[-1]
    assert last["event"] == "asset source unavailable" and last["uri"] == uri, (case, last)


@pytest.mark.parametrize(("case", "endpoint", "prefix"), PERMANENT, ids=[c for c, _, _ in PERMANENT])
def test_a_uri_wrong_as_written_is_bad_configuration(case: str, endpoint: Endpoint, prefix: str,
                                                     s3_endpoint: str, hdri_bucket: str) -> None:
    uri = f"s3://{hdri_bucket}-{uuid.uuid4().hex[:6]}/hdri" if prefix == "missing" else f"s3://{hdri_bucket}/{prefix}"
    with endpoint(s3_endpoint) as ep:
        code, events = _worker(_spec(hdri_bucket, ep, uri))
    assert code == EXIT_BAD_CONFIG, (case, events[-1:])
    last = events[-1]
    assert last["event"] == "bad configuration" and "spec.assets.environments[0].uri" in last["error"], (case, last)
    assert uri in last["error"], (case, last)


def test_listing_and_download_raise_unavailable_naming_the_uri(tmp_path: Path, s3_endpoint: str, aws_env: None,
                                                               hdri_bucket: str) -> None:
    uri = f"s3://{hdri_bucket}/hdri"
    with answering(500, "InternalError") as ep:
        cache = AssetCache(tmp_path / "c", endpoint_url=ep)
        with pytest.raises(Unavailable, match="InternalError") as listed:
            list_uri(uri, cache)
        assert listed.value.uri == uri and not isinstance(listed.value, Unreachable)
        with pytest.raises(Unavailable) as fetched:
            fetch_file(uri, "studio.hdr", cache)
        assert fetched.value.uri == f"{uri}/studio.hdr"
    with pytest.raises(Unreachable, match="NoSuchBucket"):
        list_uri(f"s3://{hdri_bucket}-gone/hdri", AssetCache(tmp_path / "d", endpoint_url=s3_endpoint))
