"""The run-in-a-box harness: a cluster-shaped world on 127.0.0.1, with the real operator and renderer.

One :class:`Box` holds:

* the API server emulator (:mod:`box.apiserver`, KMock's scaffold with a faithful store) on a
  random port, and a kubeconfig pointing at it;
* the simulated Job controller (:mod:`box.jobcontroller`) and scheduler + kubelets
  (:mod:`box.kubelet`), which run each Pod as a local process of its container command: the real
  ``synth-render`` from this virtualenv, with the Pod's env and args;
* moto's S3 server and the fault-injecting proxy in front of it (:mod:`box.s3`); pods reach S3
  only through the proxy, the harness reads the truth straight from moto;
* the real operator as a subprocess: ``synthctl operator --standalone -A`` with ``KUBECONFIG``
  pointing at the emulator (and short ``SYNTH_OPERATOR_*`` intervals), which can be killed and
  restarted at will.

The checks every scenario ends with live here too: :meth:`Box.truth` reads the bucket (which
shards are committed, every sample's global index), :meth:`Box.validate` runs
``synthctl validate`` on it.

What it simulates and what it does not is stated in each module's docstring and in
docs/reliability.md ("what the harness simulates and what it does not").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import sys
import tarfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmock import Server

from box.apiserver import EVENTS, RB, SDS, SECRETS, ApiFaults, ApiServer
from box.jobcontroller import JobController
from box.kubelet import Kubelets, Node
from box.s3 import FaultProxy, MotoS3, S3Faults

VENV_BIN = Path(sys.executable).parent
SYNTHCTL = str(VENV_BIN / "synthctl")
NAMESPACE = "synth"
BUCKET = "box-data"
SECRET = "s3-creds"
ACCESS_KEY = "AKIABOXHARNESS0001"
SECRET_KEY = "box-secret-Zq7xV9kP2mW4tR8yL1nB6cD3"
"""A recognisable secret value: tests/security greps logs, status and events for it."""


def tiny_spec(*, endpoint: str, samples: int = 12, shard_size: int = 3, workers_max: int = 2,
              shards_per_batch: int | None = 2, per_shard: int = 3, attempts: int = 3, seed: int = 11,
              **extra: Any) -> dict[str, Any]:
    """A dataset that renders in seconds on a CPU: 64x64, 2-4 spp, no denoiser, no quality gate."""
    spec: dict[str, Any] = {
        "samples": samples, "seed": seed, "version": "1", "shardSize": shard_size,
        "categories": [{"name": c} for c in ("geometry", "materials", "lighting", "camera", "composition")],
        "render": {"engine": "cycles", "device": "cpu", "resolutions": [{"width": 64, "height": 64}],
                   "samples": {"min": 2, "max": 4}, "denoise": False, "passes": ["rgb", "depth", "segmentation"]},
        # No quality gate: 2-4 spp is noisy by design, and a quarantined sample would leave its shard
        # (the gate is tested in tests/renderer; here every sample must reach the bucket).
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0, "maxNoiseSigma": 1.0,
                    "maxClipped": 1.0, "minObjectPixels": 1, "minVisibleFraction": 0.0},
        "output": {"uri": f"s3://{BUCKET}/data", "endpointUrl": endpoint, "region": "us-east-1",
                   "credentialsSecret": SECRET, "indexFormats": ["jsonl"]},
        "workers": {"min": 1, "max": workers_max},
        "nodePool": {"gpusPerWorker": 0, "cpu": "1", "memory": "1Gi", "spot": True, "onDemandFallback": False},
        "retry": {"perShard": per_shard, "attempts": attempts},
        "image": "ghcr.io/parallel-synth/renderer:box",
    }
    if shards_per_batch is not None:
        spec["shardsPerBatch"] = shards_per_batch
    spec.update(extra)
    return spec


@dataclass
class Truth:
    """What the bucket holds for one dataset version."""

    committed_shards: set[int] = field(default_factory=set)
    indexes: Counter[int] = field(default_factory=Counter)
    manifest_samples: int = 0
    quarantined: int = 0
    """Samples of committed shards that the quality gate moved to ``quarantine/`` (in ``indexes`` too)."""
    problems: list[str] = field(default_factory=list)
    """Inconsistencies in the bucket: a tar that is not the one its manifest names (sha256 or sample
    count), a sample filed under another shard. Every scenario requires none."""

    @property
    def duplicates(self) -> int:
        return sum(c - 1 for c in self.indexes.values() if c > 1)

    def missing(self, expected: set[int]) -> int:
        return len(expected - set(self.indexes))


@dataclass
class BoxOptions:
    nodes: int = 2
    pods_per_node: int = 2
    api_faults: ApiFaults = field(default_factory=ApiFaults)
    s3_faults: S3Faults = field(default_factory=S3Faults)
    operator_env: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    grace_cap: float = 15.0
    seed: int = 0
    standalone: bool = True
    """``--standalone`` (no peering), as the default install runs it. False runs it with kopf peering
    (the ClusterKopfPeering object exists), as a Deployment with standby replicas would."""


class Box:
    """Enter with ``async with Box(tmp_path) as box:``; see the module docstring."""

    def __init__(self, workdir: Path, options: BoxOptions | None = None) -> None:
        self.workdir = workdir
        self.options = options or BoxOptions()
        self.rng = random.Random(self.options.seed)
        self.api = ApiServer(faults=self.options.api_faults)
        self.s3 = MotoS3()
        self.proxy: FaultProxy | None = None
        self.jobs = JobController(self.api)
        self.kubelets = Kubelets(
            self.api, workdir,
            nodes=[Node(f"node-{i}", self.options.pods_per_node) for i in range(self.options.nodes)],
            grace_cap=self.options.grace_cap, commands=self.options.commands,
            base_env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"},
        )
        self.kubeconfig = workdir / "kubeconfig"
        self.operator: asyncio.subprocess.Process | None = None
        self.operator_starts = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._server: Server | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Box:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.api.__aenter__()
        self._server = Server(self.api)
        await self._server.__aenter__()
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "box",
            "clusters": [{"name": "box", "cluster": {"server": f"http://127.0.0.1:{self._server.port}"}}],
            "users": [{"name": "box", "user": {"token": "box-operator-token"}}],
            "contexts": [{"name": "box", "context": {"cluster": "box", "user": "box", "namespace": NAMESPACE}}],
        }))
        await asyncio.to_thread(self.s3.start)
        self.proxy = await FaultProxy(self.s3.url, self.options.s3_faults).start()
        await asyncio.to_thread(self.s3.client().create_bucket, Bucket=BUCKET)
        self.api.create(("", "v1", "namespaces"), None, {"metadata": {"name": NAMESPACE}})
        self.api.create(("kopf.dev", "v1", "clusterkopfpeerings"), None, {"metadata": {"name": "parallel-synth"}})
        self.api.create(SECRETS, NAMESPACE, {"metadata": {"name": SECRET}, "type": "Opaque", "data": {
            "AWS_ACCESS_KEY_ID": base64.b64encode(ACCESS_KEY.encode()).decode(),
            "AWS_SECRET_ACCESS_KEY": base64.b64encode(SECRET_KEY.encode()).decode()}})
        self._tasks = [asyncio.create_task(self.jobs.run(self._stop)),
                       asyncio.create_task(self.kubelets.run(self._stop))]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_operator(signal.SIGTERM)
        self._stop.set()
        for t in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 30)
        if self.proxy is not None:
            await self.proxy.stop()
        await asyncio.to_thread(self.s3.stop)
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        await self.api.__aexit__(None, None, None)

    # ------------------------------------------------------------------ operator

    @property
    def operator_log_path(self) -> Path:
        return self.workdir / "logs" / "operator.log"

    async def start_operator(self, *, ready_timeout: float = 60.0) -> None:
        env = {
            "PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(self.workdir), "LANG": "C.UTF-8",
            "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1",
            "SYNTH_OPERATOR_DATASET_INTERVAL": "1.0", "SYNTH_OPERATOR_BATCH_INTERVAL": "1.0",
            "SYNTH_OPERATOR_INITIAL_DELAY": "0.2", "SYNTH_OPERATOR_RETRY_BACKOFF_SECONDS": "1.0",
            "SYNTH_OPERATOR_RETRY_BACKOFF_MAX_SECONDS": "4.0",
            "SYNTH_OPERATOR_TERMINATION_GRACE_SECONDS": "20",
            **self.options.operator_env,
        }
        self.operator_log_path.parent.mkdir(parents=True, exist_ok=True)
        mark = len(self.api.audit)
        with open(self.operator_log_path, "ab") as log:
            log.write(f"--- operator start #{self.operator_starts + 1}\n".encode())
            log.flush()
            self.operator = await asyncio.create_subprocess_exec(
                SYNTHCTL, "operator", *(["--standalone"] if self.options.standalone else []), "-A", "--verbose",
                env=env, cwd=self.workdir,
                stdout=log, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True)
        self.operator_starts += 1
        await self.wait_for(lambda: any("synthdatasets" in p and "watch" in p for _, p, _ in self.api.audit[mark:]),
                            timeout=ready_timeout, what="the operator to watch SynthDatasets")

    async def stop_operator(self, sig: int = signal.SIGKILL) -> int | None:
        proc, self.operator = self.operator, None
        if proc is None or proc.returncode is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return await proc.wait()

    def operator_alive(self) -> bool:
        return self.operator is not None and self.operator.returncode is None

    def operator_log(self) -> str:
        return self.operator_log_path.read_text(errors="replace") if self.operator_log_path.exists() else ""

    # ------------------------------------------------------------------ objects

    @property
    def endpoint(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def apply_dataset(self, name: str, spec: dict[str, Any], *, namespace: str = NAMESPACE) -> dict[str, Any]:
        """As ``kubectl apply`` would (no admission: the CRD schema is not enforced here)."""
        return self.api.create(SDS, namespace, {
            "apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}, keep_status=False)

    def dataset(self, name: str, *, namespace: str = NAMESPACE) -> dict[str, Any]:
        obj = self.api.read(SDS, namespace, name)
        assert obj is not None, f"SynthDataset {name} is gone"
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.dataset(name).get("status") or {})

    def batches(self, dataset: str) -> list[dict[str, Any]]:
        return [b for b in self.api.select(RB, NAMESPACE) if b["spec"].get("dataset") == dataset]

    def events(self) -> list[dict[str, Any]]:
        return self.api.select(EVENTS)

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float, what: str,
                       poll: float = 0.25) -> None:
        """Bounded wait on a condition of the world (re-checked on every change, at least every ``poll`` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            if self.operator is not None and self.operator.returncode is not None:
                raise RuntimeError(f"the operator exited with {self.operator.returncode} while waiting for {what}:\n"
                                   + self.operator_log()[-3000:])
            await self.api.changed(poll)

    async def wait_phase(self, name: str, phases: tuple[str, ...], *, timeout: float) -> dict[str, Any]:
        await self.wait_for(lambda: self.status(name).get("phase") in phases, timeout=timeout,
                            what=f"SynthDataset {name} to reach {phases} (now {self.status(name).get('phase')})")
        return self.status(name)

    async def chaos(self, until: Callable[[], bool], action: Callable[[], Awaitable[bool] | bool], *,
                    every: tuple[float, float], limit: int, timeout: float) -> int:
        """Call ``action`` at random intervals until ``until()`` or ``limit`` successful actions."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        done = 0
        while done < limit and not until() and loop.time() < deadline:
            await asyncio.sleep(self.rng.uniform(*every))
            result = action()
            if asyncio.iscoroutine(result):
                result = await result
            done += bool(result)
        return done

    # ------------------------------------------------------------------ the bucket's truth

    def truth(self, dataset: str, version: str = "1", prefix: str = "data") -> Truth:
        """Read every committed shard from moto directly (never through the fault proxy)."""
        client = self.s3.client()
        root = f"{prefix}/{dataset}/v{version}"
        out = Truth()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=f"{root}/manifests/"):
            for item in page.get("Contents", []):
                doc = json.loads(client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
                shard = int(doc["shard"])
                out.committed_shards.add(shard)
                out.manifest_samples += int(doc["samples"])
                data = client.get_object(Bucket=BUCKET, Key=f"{root}/shards/{shard:08d}.tar")["Body"].read()
                if hashlib.sha256(data).hexdigest() != doc.get("sha256"):
                    out.problems.append(f"shard {shard}: the tar is not the one its manifest committed (sha256)")
                in_tar = 0
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    for member in tar:
                        if member.name.endswith(".json") and member.name.count(".") == 1:
                            meta = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
                            out.indexes[int(meta["index"])] += 1
                            in_tar += 1
                            if int(meta.get("shard", shard)) != shard:
                                out.problems.append(f"{member.name} says shard {meta.get('shard')}, is in {shard}")
                if in_tar != int(doc["samples"]):
                    out.problems.append(f"shard {shard}: {in_tar} samples in the tar, manifest says {doc['samples']}")
                held = int((doc.get("quarantined") or {}).get("samples") or 0)
                if held:
                    self._quarantined(client, f"{root}/quarantine/{shard:08d}", shard, held, out)
        return out

    @staticmethod
    def _quarantined(client: Any, base: str, shard: int, held: int, out: Truth) -> None:
        """Samples the quality gate moved out of a committed shard: accounted for, in its quarantine."""
        try:
            doc = json.loads(client.get_object(Bucket=BUCKET, Key=f"{base}.json")["Body"].read())
            data = client.get_object(Bucket=BUCKET, Key=f"{base}.tar")["Body"].read()
        except client.exceptions.NoSuchKey:
            out.problems.append(f"shard {shard}: manifest says {held} quarantined, the quarantine is missing")
            return
        indexes = [int(e["index"]) for e in doc.get("entries") or []]
        if len(indexes) != held or hashlib.sha256(data).hexdigest() != doc.get("sha256"):
            out.problems.append(f"shard {shard}: quarantine does not match the manifest ({len(indexes)} of {held})")
        out.quarantined += len(indexes)
        out.indexes.update(indexes)

    async def validate_report(self, dataset: str, *, manifest: Path | None = None, version: str = "1",
                              prefix: str = "data") -> tuple[int, list[dict[str, Any]]]:
        """``synthctl validate --report -``: (exit code, the problems of its JSON report)."""
        extra = ["--report", "-"] + (["--manifest", str(manifest)] if manifest else [])
        code, out = await self.validate(dataset, version=version, prefix=prefix, extra=extra)
        start = out.find("{")
        try:
            doc, _ = json.JSONDecoder().raw_decode(out[start:])
        except ValueError as exc:
            raise RuntimeError(f"synthctl validate printed no JSON report (exit {code}):\n{out[-2000:]}") from exc
        return code, list(doc.get("problems") or [])

    async def validate(self, dataset: str, version: str = "1", prefix: str = "data",
                       extra: list[str] | None = None) -> tuple[int, str]:
        """``synthctl validate s3://...`` against moto directly; (exit code, output)."""
        env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(self.workdir), "LANG": "C.UTF-8",
               "AWS_ACCESS_KEY_ID": "harness", "AWS_SECRET_ACCESS_KEY": "harness",
               "AWS_DEFAULT_REGION": "us-east-1"}
        proc = await asyncio.create_subprocess_exec(
            SYNTHCTL, "validate", f"s3://{BUCKET}/{prefix}/{dataset}/v{version}", "--endpoint-url", self.s3.url,
            *(extra or []), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        return int(proc.returncode or 0), out.decode(errors="replace")
