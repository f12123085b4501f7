"""No secret value ever leaves the Secret: not in logs, status, events, Jobs or Pods.

The run-in-a-box harness creates the S3 Secret with a recognisable value, the real operator
renders a tiny dataset with real renderer pods that authenticate with it, and then every log line,
every object in the API server (statuses, events, Jobs, Pods) and every request path is searched
for the value. The renderer must have signed its S3 requests with exactly that access key (so
the credentials did come from the Secret), and the operator must never have read a Secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from box.apiserver import SECRETS
from box.cluster import ACCESS_KEY, SECRET_KEY, Box, tiny_spec
from box.scenarios import finished

pytestmark = [pytest.mark.slow, pytest.mark.integration]

OPERATOR_TOKEN = "box-operator-token"


async def test_no_secret_value_in_logs_status_events_or_objects(tmp_path: Path) -> None:
    async with Box(tmp_path) as box:
        await box.start_operator()
        box.apply_dataset("secretive", tiny_spec(endpoint=box.endpoint, samples=6, shard_size=3))
        await box.wait_for(lambda: finished(box, "secretive"), timeout=240, what="the dataset to finish")
        assert box.status("secretive")["phase"] == "Succeeded"

        assert box.proxy is not None
        assert box.proxy.access_keys == {ACCESS_KEY}, "pods must sign S3 requests with the Secret's key only"

        haystacks: dict[str, str] = {"operator log": box.operator_log()}
        haystacks.update({f"pod log {k}": v for k, v in box.kubelets.pod_logs().items()})
        for key in box.api.kinds:
            if key == SECRETS:
                continue
            for obj in box.api.select(key):
                haystacks[f"{'/'.join(key)} {obj['metadata'].get('name')}"] = json.dumps(obj)
        haystacks["request paths"] = "\n".join(p for _, p, _ in box.api.audit)
        assert len(haystacks) > 10, "the run produced logs and objects to search"
        for where, text in haystacks.items():
            for value in (SECRET_KEY, ACCESS_KEY):
                assert value not in text, f"a credential leaked into the {where}"
        assert OPERATOR_TOKEN not in haystacks["operator log"], "the operator logged its bearer token"

        secret_reads = [(m, p) for m, p, _ in box.api.audit if "/secrets" in p]
        assert not secret_reads, f"the operator read Secrets: {secret_reads[:3]}"
