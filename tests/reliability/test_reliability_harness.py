"""The harness itself: the emulated API, Job controller, kubelets and S3 proxy behave as the real ones.

These run in seconds (pods are ``box/fakepod.py`` processes, no operator, no Blender), so a
change to the harness that would make the scenarios lie fails here first.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.config import Config
from box.apiserver import JOBS, PODS, RB, ApiFaults, ApiServer
from box.cluster import NAMESPACE, Box, BoxOptions
from box.s3 import FaultProxy, MotoS3, S3Faults

FAKEPOD = [sys.executable, str(Path(__file__).parent / "box" / "fakepod.py")]
RULES = [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [2]}},
    {"action": "Ignore", "onExitCodes": {"containerName": "c", "operator": "In", "values": [143]}},
]


def job(name: str, *, completions: int, parallelism: int, exits: dict[str, list[int]] | None = None,
        per_index: int = 2, seconds: float = 0.2, max_failed: int | None = None) -> dict[str, Any]:
    env = [{"name": "FAKE_EXITS", "value": json.dumps(exits or {})}, {"name": "FAKE_SECONDS", "value": str(seconds)},
           {"name": "FAKE_ATTEMPT", "valueFrom": {"fieldRef": {
               "fieldPath": "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"}}}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"completionMode": "Indexed", "completions": completions, "parallelism": parallelism,
                     "backoffLimitPerIndex": per_index, "maxFailedIndexes": max_failed or completions,
                     "podReplacementPolicy": "Failed", "podFailurePolicy": {"rules": RULES},
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "c", "command": ["fakepod"], "env": env}]}}}}


def status(box: Box, name: str) -> dict[str, Any]:
    j = box.api.read(JOBS, NAMESPACE, name)
    assert j is not None
    return dict(j.get("status") or {})


def finished(box: Box, name: str) -> str | None:
    for c in status(box, name).get("conditions") or []:
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return str(c["type"])
    return None


@pytest.fixture
async def box(tmp_path: Path) -> Any:
    async with Box(tmp_path, BoxOptions(nodes=2, pods_per_node=2, commands={"fakepod": FAKEPOD})) as b:
        yield b


async def test_indexed_job_completes_every_index_within_parallelism(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=5, parallelism=2, seconds=0.3))
    peak = 0

    def done() -> bool:
        nonlocal peak
        peak = max(peak, len(box.kubelets.running_pods()))
        return finished(box, "j") is not None

    await box.wait_for(done, timeout=60, what="the Job to finish", poll=0.05)
    st = status(box, "j")
    assert finished(box, "j") == "Complete"
    assert (st["completedIndexes"], st["succeeded"], st["failed"], st["active"]) == ("0-4", 5, 0, 0)
    assert 1 <= peak <= 2
    assert [c["type"] for c in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]


async def test_backoff_limit_per_index_and_failed_indexes(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=3, parallelism=3, per_index=1,
                                        exits={"1": [1, 0], "2": [1, 1, 1]}))
    await box.wait_for(lambda: finished(box, "j") is not None, timeout=60, what="the Job to finish")
    st = status(box, "j")
    assert finished(box, "j") == "Failed"
    assert (st["completedIndexes"], st["failedIndexes"], st["failed"]) == ("0-1", "2", 3)
    assert next(c for c in st["conditions"] if c["type"] == "Failed")["reason"] == "FailedIndexes"


async def test_exit_2_fails_the_job_and_143_is_ignored(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("bad", completions=2, parallelism=1, exits={"0": [2]}))
    box.api.create(JOBS, NAMESPACE, job("term", completions=1, parallelism=1, per_index=0, exits={"0": [143]}))
    await box.wait_for(lambda: finished(box, "bad") is not None, timeout=60, what="the exit-2 Job to fail")
    bad = next(c for c in status(box, "bad")["conditions"] if c["type"] == "Failed")
    assert bad["reason"] == "PodFailurePolicy"
    await box.wait_for(lambda: sum(1 for p, c in box.kubelets.exits if p.startswith("term-") and c == 143) >= 3,
                       timeout=60, what="three exits 143")
    term = status(box, "term")
    assert finished(box, "term") is None and term.get("failed", 0) == 0, "143 must not count, even at limit 0"


async def test_preemption_sets_disruption_target_and_replaces_only_after_exit(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=1, parallelism=1, seconds=30))
    await box.wait_for(lambda: bool(box.kubelets.running_pods()), timeout=30, what="a running pod")
    victim = box.kubelets.running_pods()[0]
    box.kubelets.preempt(victim)
    pod = box.api.read(PODS, NAMESPACE, victim.pod)
    assert pod is not None and pod["metadata"].get("deletionTimestamp")
    assert any(c["type"] == "DisruptionTarget" for c in pod["status"]["conditions"])
    assert len(box.api.select(PODS, NAMESPACE)) == 1, "podReplacementPolicy=Failed: no replacement while terminating"
    await box.wait_for(lambda: (victim.pod, 143) in box.kubelets.exits, timeout=30, what="SIGTERM -> exit 143")
    await box.wait_for(lambda: any(p["metadata"]["name"] != victim.pod for p in box.api.select(PODS, NAMESPACE)),
                       timeout=30, what="a replacement pod")
    await box.wait_for(lambda: box.api.read(PODS, NAMESPACE, victim.pod) is None, timeout=10,
                       what="the preempted pod to go once counted (tracking finalizer released)")
    assert status(box, "j")["failed"] == 0


async def test_kill_and_node_loss(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=4, parallelism=4, seconds=3, per_index=3))
    await box.wait_for(lambda: len(box.kubelets.running_pods()) == 4, timeout=30, what="four running pods")
    box.kubelets.kill(box.kubelets.running_pods()[0])
    await box.wait_for(lambda: 137 in [c for _, c in box.kubelets.exits], timeout=30, what="exit 137")
    lost = box.kubelets.lose_node("node-1")
    assert lost
    await box.wait_for(lambda: finished(box, "j") is not None, timeout=60, what="the Job to finish")
    st = status(box, "j")
    assert finished(box, "j") == "Complete"
    assert st["failed"] == 1, "the SIGKILL counts; pods lost with their node are disruptions"
    assert any(n.name.startswith("node-1-r") for n in box.kubelets.nodes), "a replacement node joined"


async def test_api_semantics_over_http(box: Box) -> None:
    assert box._server is not None
    base = f"http://127.0.0.1:{box._server.port}/apis/parallelsynth.io/v1alpha1/namespaces/{NAMESPACE}/renderbatches"
    rb = {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
          "metadata": {"name": "b", "labels": {"x": "1"}}, "spec": {"dataset": "d", "shardStart": 0, "shardCount": 1},
          "status": {"phase": "ignored on create"}}
    async with aiohttp.ClientSession() as s:
        async with s.post(base, json=rb) as r:
            created = await r.json()
            assert r.status == 201 and "status" not in created and created["metadata"]["generation"] == 1
        async with s.post(base, json=rb) as r:
            assert r.status == 409
        rv = created["metadata"]["resourceVersion"]
        merge = {"Content-Type": "application/merge-patch+json"}
        async with s.patch(f"{base}/b", json={"spec": {"parallelism": 2}, "status": {"phase": "X"}}, headers=merge) as r:
            body = await r.json()
            assert body["metadata"]["generation"] == 2 and "status" not in body, "status only via /status"
        async with s.patch(f"{base}/b/status", json={"status": {"phase": "Running"}, "spec": {"parallelism": 9}},
                           headers=merge) as r:
            body = await r.json()
            assert body["status"] == {"phase": "Running"} and body["spec"]["parallelism"] == 2
            assert body["metadata"]["generation"] == 2
        async with s.patch(f"{base}/b", json={"metadata": {"resourceVersion": rv}, "spec": {"parallelism": 3}},
                           headers=merge) as r:
            assert r.status == 409, "a stale resourceVersion precondition conflicts"
        async with s.get(base, params={"labelSelector": "x=2"}) as r:
            assert (await r.json())["items"] == []
        async with s.get(base, params={"watch": "true", "resourceVersion": rv}) as r:
            line = await asyncio.wait_for(r.content.readline(), 5)
            assert json.loads(line)["object"]["spec"].get("parallelism") == 2, "watch resumes after rv"
    assert box.api.read(RB, NAMESPACE, "b") is not None


async def test_garbage_collection_and_job_orphaning(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=1, parallelism=1, seconds=30))
    await box.wait_for(lambda: bool(box.kubelets.running_pods()), timeout=30, what="a running pod")
    box.api.delete_obj(JOBS, NAMESPACE, "j", propagation="Background")
    await box.wait_for(lambda: not box.api.select(PODS, NAMESPACE), timeout=30,
                       what="the Job's pods to be collected (SIGTERM, exit, removal)")
    box.api.create(JOBS, NAMESPACE, job("k", completions=1, parallelism=1, seconds=30))
    await box.wait_for(lambda: bool(box.kubelets.running_pods()), timeout=30, what="a running pod")
    box.api.delete_obj(JOBS, NAMESPACE, "k")  # batch/v1 default: orphan the pods
    await asyncio.sleep(0.5)  # give a wrong GC the chance to act; nothing is expected to change
    pods = box.api.select(PODS, NAMESPACE)
    assert len(pods) == 1 and not pods[0]["metadata"].get("ownerReferences")


async def test_api_faults_are_injected_and_counted() -> None:
    api = ApiServer(faults=ApiFaults(throttle_rate=1.0, max_each=1))
    async with api:
        from kmock import Server

        async with Server(api) as srv, aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{srv.port}/api/v1/namespaces/x/pods"
            async with s.get(url) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1"
            async with s.get(url) as r:
                assert r.status == 200
    assert api.injected == {"throttle": 1}


async def test_s3_proxy_faults_are_survivable_with_retries() -> None:
    moto = MotoS3().start()
    proxy = await FaultProxy(moto.url, S3Faults(slowdown_rate=0.3, reset_rate=0.2, partial_upload_rate=0.3,
                                                lost_response_rate=0.2, max_each=3, seed=1)).start()
    try:
        moto.client().create_bucket(Bucket="faulty")
        client = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id="k",
                              aws_secret_access_key="s",
                              config=Config(retries={"max_attempts": 10, "mode": "standard"}))
        for i in range(15):
            await asyncio.to_thread(client.put_object, Bucket="faulty", Key=f"o{i}", Body=b"x" * 5000)
        keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket="faulty")["Contents"]]
        assert len(keys) == 15
        assert set(proxy.injected) == {"slowdown", "reset", "partial_upload", "lost_response"}
        assert all(v <= 3 for v in proxy.injected.values())
    finally:
        await proxy.stop()
        moto.stop()


@pytest.mark.integration
async def test_standalone_operator_starts_watching(tmp_path: Path) -> None:
    """The default install runs ``--standalone``; it once paused forever (mandatory peering)."""
    async with Box(tmp_path, BoxOptions(standalone=True)) as b:
        await b.start_operator(ready_timeout=30)
        assert b.operator_alive()


async def test_every_write_bumps_the_resource_version_and_a_stale_one_conflicts(box: Box) -> None:
    assert box._server is not None
    base = f"http://127.0.0.1:{box._server.port}/apis/parallelsynth.io/v1alpha1/namespaces/{NAMESPACE}/renderbatches"
    merge, jpatch = {"Content-Type": "application/merge-patch+json"}, {"Content-Type": "application/json-patch+json"}
    seen: list[int] = []
    async with aiohttp.ClientSession() as s:
        async def write(method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
            async with s.request(method, url, json=body, headers=headers) as r:
                obj = await r.json()
                assert r.status in (200, 201), obj
            seen.append(int(obj["metadata"]["resourceVersion"]))
            return dict(obj)

        obj = await write("POST", base, {"metadata": {"name": "b"}, "spec": {"dataset": "d"}})
        stale = obj["metadata"]["resourceVersion"]
        await write("PATCH", f"{base}/b", {"spec": {"parallelism": 2}}, merge)
        await write("PATCH", f"{base}/b/status", {"status": {"phase": "Running"}}, merge)
        obj = await write("PUT", f"{base}/b", {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(seen[-1])},
                                               "spec": {"dataset": "d", "parallelism": 3}})
        await write("PUT", f"{base}/b/status", {**obj, "status": {"phase": "Succeeded"}})
        await write("PATCH", f"{base}/b", [{"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}], jpatch)
        await write("DELETE", f"{base}/b", None)  # a finalizer: deletionTimestamp is a write too
        assert seen == sorted(set(seen)), f"resourceVersion must grow on every write: {seen}"
        for method, url, body, headers in [
            ("PUT", f"{base}/b", {**obj, "metadata": {**obj["metadata"], "resourceVersion": stale}}, None),
            ("PUT", f"{base}/b/status", {**obj, "metadata": {**obj["metadata"], "resourceVersion": stale}}, None),
            ("PATCH", f"{base}/b", {"metadata": {"resourceVersion": stale}, "spec": {"parallelism": 4}}, merge),
            ("PATCH", f"{base}/b/status", {"metadata": {"resourceVersion": stale}, "status": {"x": 1}}, merge),
        ]:
            async with s.request(method, url, json=body, headers=headers) as r:
                assert r.status == 409 and (await r.json())["reason"] == "Conflict", (method, url)
        test = [{"op": "test", "path": "/metadata/resourceVersion", "value": stale},
                {"op": "remove", "path": "/metadata/finalizers"}]
        async with s.patch(f"{base}/b", json=test, headers=jpatch) as r:
            assert r.status == 422
    assert box.api.injected == {"conflict": 5}, "stale preconditions are counted as conflicts"


async def test_concurrent_writers_make_preconditioned_writes_conflict() -> None:
    """The fault is spent only where it can bite: writes that carry a resourceVersion precondition."""
    api = ApiServer(faults=ApiFaults(conflict_rate=1.0, max_each=2))
    async with api:
        from kmock import Server

        async with Server(api) as srv, aiohttp.ClientSession() as s:
            base = f"http://127.0.0.1:{srv.port}/apis/parallelsynth.io/v1alpha1/namespaces/x/renderbatches"
            async with s.post(base, json={"metadata": {"name": "b"}, "spec": {"dataset": "d"}}) as r:
                assert r.status == 201
            merge = {"Content-Type": "application/merge-patch+json"}
            for i in range(3):  # plain merge patches: another writer cannot make them fail
                async with s.patch(f"{base}/b/status", json={"status": {"n": i}}, headers=merge) as r:
                    assert r.status == 200
            assert "concurrent_write" not in api.injected
            async with s.get(f"{base}/b") as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            async with s.patch(f"{base}/b", json={"metadata": {"resourceVersion": rv}, "spec": {"p": 1}},
                               headers=merge) as r:
                assert r.status == 409, "fresh when sent, stale when applied: a real conflict"
            async with s.get(f"{base}/b") as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                   {"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]}]
            async with s.patch(f"{base}/b", json=ops, headers={"Content-Type": "application/json-patch+json"}) as r:
                assert r.status == 422
    assert api.injected == {"concurrent_write": 2, "conflict": 2}


async def test_s3_proxy_counts_each_shard_commit() -> None:
    moto = MotoS3().start()
    proxy = await FaultProxy(moto.url, S3Faults(lost_response_rate=1.0, max_each=1)).start()
    try:
        moto.client().create_bucket(Bucket="commits")
        client = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id="k",
                              aws_secret_access_key="s", config=Config(retries={"max_attempts": 5, "mode": "standard"}))

        def put(key: str, body: bytes) -> None:
            client.put_object(Bucket="commits", Key=f"data/d/v1/{key}", Body=body)

        await asyncio.to_thread(put, "manifests/00000000.json", b'{"shard": 0}')  # response lost, retried
        assert proxy.injected == {"lost_response": 1}
        await asyncio.to_thread(put, "shards/00000001.tar", b"tar")
        await asyncio.to_thread(put, "shards/00000001.tar", b"tar")
        await asyncio.to_thread(put, "manifests/00000001.json", b'{"shard": 1}')
        assert proxy.double_commits() == {}, "a client's retry of a lost response is one commit; tars are not commits"
        await asyncio.to_thread(put, "manifests/00000001.json", b'{"shard": 1, "by": "a zombie"}')
        assert proxy.double_commits() == {"/commits/data/d/v1/manifests/00000001.json": 2}
        assert sum(proxy.commits.values()) == 3
    finally:
        await proxy.stop()
        moto.stop()


async def test_a_crash_counts_only_when_a_running_container_was_killed(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=2, parallelism=2, seconds=30, per_index=3))
    await box.wait_for(lambda: len(box.kubelets.running_pods()) == 2, timeout=30, what="two running pods")
    first, second = box.kubelets.running_pods()
    assert box.kubelets.kill(first)
    await box.wait_for(lambda: first.pod in dict(box.kubelets.exits), timeout=30, what="the killed pod to exit")
    assert not box.kubelets.kill(first), "a container that has exited cannot crash again"
    box.kubelets.preempt(second)
    await box.wait_for(lambda: second.pod in dict(box.kubelets.exits), timeout=30, what="SIGTERM -> exit")
    assert not box.kubelets.kill(second)
    assert box.kubelets.killed == [first.pod] and box.kubelets.crashed() == [first.pod]


async def test_a_partitioned_node_leaves_zombie_containers_running(box: Box) -> None:
    box.api.create(JOBS, NAMESPACE, job("j", completions=1, parallelism=1, seconds=4))
    await box.wait_for(lambda: bool(box.kubelets.running_pods()), timeout=30, what="a running pod")
    victim = box.kubelets.running_pods()[0]
    zombies = box.kubelets.partition_node(victim.node)
    assert [z.pod for z in zombies] == [victim.pod] and box.kubelets.freeze(victim)
    await box.wait_for(lambda: any(p["metadata"]["name"] != victim.pod for p in box.api.select(PODS, NAMESPACE)),
                       timeout=30, what="a replacement pod")
    await box.wait_for(lambda: box.api.read(PODS, NAMESPACE, victim.pod) is None, timeout=10,
                       what="the node lifecycle controller to evict the partitioned pod")
    assert victim.proc is not None and victim.proc.returncode is None, "the zombie still runs"
    await box.wait_for(lambda: finished(box, "j") is not None, timeout=60, what="the Job to finish")
    assert finished(box, "j") == "Complete" and status(box, "j")["failed"] == 0
    box.kubelets.thaw(victim)
    assert await box.kubelets.reap(zombies, 30) == [0], "the zombie ran to its end after its replacement"
