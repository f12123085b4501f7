"""A hostile-input corpus for every ``synthctl`` command, and the harness that runs it.

Each :class:`Case` names a command, builds its own input in a fresh folder (a tampered copy of a
small dataset rendered by the fake renderer, a hostile manifest, asset library or option value,
a FIFO with no writer, ``/dev/zero``, an S3 endpoint that never answers) and says which exit
codes DESIGN allows and which text the one-line error must contain. :func:`run_case` runs the
real ``synthctl`` console script in a subprocess with a timeout, a memory limit and its peak
memory measured, and :func:`verdict` judges the outcome: a traceback, a hang, a wrong exit code,
a missing or vague message, or too much memory.

Used by ``tests/badinput/test_badinput_commands.py`` (one parametrised test per case) and by
``scripts/badinput_report.py`` (the table of tracebacks and hangs per command).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for _p in (TESTS, TESTS / "local"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

SYNTHCTL = str(Path(sys.executable).parent / "synthctl")
TIMEOUT = 40.0
"""Seconds a case may take before it counts as a hang (a sound run takes 1-3 s)."""
MAX_RSS_MB = 1200
"""Peak memory a case may reach (bounded reads: nothing here needs more than a few hundred MB)."""
ADDRESS_LIMIT = 3 << 30
"""Address space of each run: a runaway read fails instead of taking the shared machine's memory."""
S3_TIMEOUT = "2"
"""``SYNTHCTL_S3_TIMEOUT`` for the runs against the endpoint that never answers."""

Argv = list[str]


@dataclass(frozen=True)
class Case:
    """One hostile input: ``prepare(dir)`` builds it and returns synthctl's arguments."""

    id: str
    command: str
    prepare: Callable[[Path], Argv]
    exits: frozenset[int]
    names: str | None
    """Text the output must contain (the file, key or field at fault); None: any message."""
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd_check: bool = False
    """Also check that nothing was written into the working directory."""
    unchanged: bool = False
    """Also check that the dataset copy under ``dir/ds`` is byte-identical after the run."""


@dataclass
class Outcome:
    code: int | None
    out: str
    seconds: float
    rss_mb: float
    hung: bool


# --------------------------------------------------------------------------- the base dataset


def base_spec(out: Path) -> Any:
    from builders import LOCAL, spec

    return spec(LOCAL, samples=20, shardSize=10, output=out)


def build_base(root: Path) -> Path:
    """A small finished dataset (2 shards of 10 samples, index, dataset.json) by the fake renderer."""
    import fakerender

    from parallel_synth.dataset.index import write_index
    from synth_contract import layout, planning
    from synth_contract.store import FileStore

    s = base_spec(root / "out")
    uri = layout.dataset_root(s.output.uri, "tiny", s.version)
    for shard in range(planning.shard_count(s)):
        fakerender.run_shard(s, "tiny", shard, store=uri)
    files = FileStore(Path(uri.removeprefix("file://")))
    write_index(s, "tiny", files, now=datetime(2026, 1, 1, tzinfo=UTC))
    return files.root


def manifest_text(**spec_fields: Any) -> str:
    from builders import SMALL, manifest, wire

    fields = {"samples": 100, "shardSize": 10, "output": {"uri": "s3://my-bucket/data"}, **spec_fields}
    return yaml.safe_dump(manifest(wire(SMALL, **fields), name="tiny"))


# --------------------------------------------------------------------------- tampering helpers


def members(tar_path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    with tarfile.open(tar_path) as tar:
        for info in tar:
            f = tar.extractfile(info) if info.isreg() else None
            out.append((info, f.read() if f is not None else b""))
    return out


def write_tar(tar_path: Path, items: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in items:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    tar_path.write_bytes(buf.getvalue())
    return buf.getvalue()


def recommit(ds: Path, shard: int, data: bytes | None = None) -> None:
    """Make shard ``shard``'s manifest agree with its tar (so only the content is hostile)."""
    tar = ds / "shards" / f"{shard:08d}.tar"
    data = tar.read_bytes() if data is None else data
    man = ds / "manifests" / f"{shard:08d}.json"
    doc = json.loads(man.read_text())
    doc.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    man.write_text(json.dumps(doc))


def edit_members(ds: Path, change: Callable[[list[tuple[tarfile.TarInfo, bytes]]], None], shard: int = 0) -> None:
    tar = ds / "shards" / f"{shard:08d}.tar"
    items = members(tar)
    change(items)
    recommit(ds, shard, write_tar(tar, items))


def set_member(ds: Path, name: str, data: bytes | None) -> None:
    """Replace (``None``: remove) member ``name`` of shard 0."""
    def change(items: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for i, (info, _) in enumerate(items):
            if info.name == name:
                if data is None:
                    del items[i]
                else:
                    items[i] = (info, data)
                return
        raise AssertionError(f"no member {name}")
    edit_members(ds, change)


KEY0 = "000000000000"
KEY1 = "000000000001"


def meta0(ds: Path) -> dict[str, Any]:
    for info, data in members(ds / "shards" / "00000000.tar"):
        if info.name == f"{KEY0}.json":
            doc: dict[str, Any] = json.loads(data)
            return doc
    raise AssertionError("no sample 0")


def set_meta(ds: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Sample 0's JSON after ``change`` (which edits it in place or returns a replacement)."""
    doc = meta0(ds)
    new = change(doc)
    set_member(ds, f"{KEY0}.json", json.dumps(doc if new is None else new).encode())


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (gray 8-bit) over a tiny body."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def add_hostile(ds: Path) -> None:
    def change(items: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        link = tarfile.TarInfo(f"{KEY0}.seg.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        dotdot = tarfile.TarInfo(f"../{KEY1}.json")
        items[:] = [(i, d) for i, d in items if i.name not in (f"{KEY0}.seg.png",)]
        items.insert(0, (link, b""))
        items.insert(1, (dotdot, b"{}"))
    edit_members(ds, change)


# --------------------------------------------------------------------------- a server that never answers


@contextmanager
def black_hole() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte; yields its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


# --------------------------------------------------------------------------- running a case


def run_case(case: Case, work: Path, *, base: Path, port: int, timeout: float = TIMEOUT) -> tuple[Outcome, Argv]:
    """Prepare the case in ``work`` (a fresh folder), run it, and return what happened."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "ds").exists():
        shutil.copytree(base, work / "ds", symlinks=True)
    argv = [a.replace("{PORT}", str(port)) for a in case.prepare(work)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
           "SYNTHCTL_S3_TIMEOUT": S3_TIMEOUT, **{k: v.replace("{W}", str(work)) for k, v in case.env.items()}}
    for key in ("VIRTUAL_ENV", "PYTHONPATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    cwd = work / "cwd"
    cwd.mkdir(exist_ok=True)
    out_path = work / "output.txt"

    def limits() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))

    t0 = time.perf_counter()
    with out_path.open("wb") as out:
        proc = subprocess.Popen([SYNTHCTL, *argv], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                stdin=subprocess.PIPE if case.stdin is not None else subprocess.DEVNULL,
                                preexec_fn=limits)
        feeder = None
        if case.stdin is not None:
            def feed() -> None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(case.stdin or b"")
                    proc.stdin.close()
                except OSError:
                    pass
            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
        done: list[tuple[int, int, Any]] = []
        waiter = threading.Thread(target=lambda: done.append(os.wait4(proc.pid, 0)), daemon=True)
        waiter.start()
        waiter.join(timeout)
        hung = not done
        if hung:
            os.killpg(proc.pid, signal.SIGKILL)
            waiter.join(10)
        proc.returncode = 0  # reaped by wait4: keep Popen from waiting again
    seconds = time.perf_counter() - t0
    _, status, usage = done[0] if done else (0, 0, None)
    code = None if hung else os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024 if usage is not None else 0.0
    text = out_path.read_bytes().decode("utf-8", "replace")
    return Outcome(code, text, seconds, rss, hung), argv


def verdict(case: Case, o: Outcome) -> list[str]:
    """What is wrong with an outcome (empty: the command handled the input as DESIGN says)."""
    bad = []
    if o.hung:
        return ["hang"]
    if "Traceback (most recent call last)" in o.out:
        bad.append("traceback")
    if o.code not in case.exits:
        bad.append(f"exit {o.code}, expected {sorted(case.exits)}")
    if case.names is not None and case.names not in o.out:
        bad.append(f"message does not name {case.names!r}")
    if o.code != 0 and not o.out.strip():
        bad.append("no message")
    if len(o.out) > 20_000:
        bad.append(f"{len(o.out):,} characters of output")
    if o.rss_mb > MAX_RSS_MB:
        bad.append(f"{o.rss_mb:,.0f} MB peak memory")
    return bad


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- the corpus

DS = "{DS}"


def _ds(argv: Argv, work: Path) -> Argv:
    return [a.replace(DS, str(work / "ds")) for a in argv]


def dataset_case(cid: str, command: str, tamper: Callable[[Path], None] | None, args: Argv, exits: set[int],
                 names: str | None, **kw: Any) -> Case:
    """A case on a tampered copy of the base dataset (``{DS}`` in ``args`` is its path)."""
    def prepare(work: Path) -> Argv:
        if tamper is not None:
            tamper(work / "ds")
        return _ds(args, work)
    return Case(f"{command.replace(' ', '-')}:{cid}", command, prepare, frozenset(exits), names, **kw)


def _cmd_args(command: str, out: str = "{W}/out") -> Argv:
    return {
        "validate": ["validate", DS],
        "export": ["export", DS, "--format", "coco", "--out", out],
        "export nerf": ["export", DS, "--format", "nerf", "--out", out],
        "export bop": ["export", DS, "--format", "bop", "--out", out],
        "preview": ["preview", DS, "--out", f"{out}.png"],
        "report": ["report", DS, "--out", f"{out}.html"],
    }[command]


def _w(argv: Argv, work: Path) -> Argv:
    return [a.replace("{W}", str(work)) for a in argv]


def _meta_set(path: str, value: Any) -> Callable[[Path], None]:
    def tamper(ds: Path) -> None:
        def change(doc: dict[str, Any]) -> None:
            node: Any = doc
            keys = path.split(".")
            for k in keys[:-1]:
                node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
            if isinstance(node, list):
                node[int(keys[-1])] = value
            else:
                node[keys[-1]] = value
        set_meta(ds, change)
    return tamper


def _meta_replace(text: bytes) -> Callable[[Path], None]:
    return lambda ds: set_member(ds, f"{KEY0}.json", text)


def _views(views: Any) -> Callable[[Path], None]:
    return _meta_set("views", views)


def _member(name: str, data: bytes | None) -> Callable[[Path], None]:
    return lambda ds: set_member(ds, name, data)


def _seg_small(ds: Path) -> None:
    set_member(ds, f"{KEY0}.seg.png", png(np.zeros((16, 16), np.uint8)))


def _duplicate_index(ds: Path) -> None:
    def change(items: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for n, (info, data) in enumerate(items):
            if info.name == f"{KEY1}.json":
                doc = json.loads(data)
                doc["index"] = 0
                items[n] = (info, json.dumps(doc).encode())
    edit_members(ds, change)


def _truncate(ds: Path) -> None:
    tar = ds / "shards" / "00000000.tar"
    data = tar.read_bytes()[:3000]
    tar.write_bytes(data)
    recommit(ds, 0, data)


def _garbage_tar(ds: Path) -> None:
    data = os.urandom(20_000)
    (ds / "shards" / "00000000.tar").write_bytes(data)
    recommit(ds, 0, data)


def _replace_with(rel: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def tamper(ds: Path) -> None:
        p = ds / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        make(p)
    return tamper


def _symlink(target: str) -> Callable[[Path], None]:
    return lambda p: p.symlink_to(target)


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _outside_copy(p: Path) -> None:
    outside = p.parent.parent.parent / "outside.tar"
    outside.write_bytes(b"outside the dataset")
    p.symlink_to(outside)


def _dataset_json(change: Callable[[dict[str, Any]], Any] | bytes) -> Callable[[Path], None]:
    def tamper(ds: Path) -> None:
        p = ds / "dataset.json"
        if isinstance(change, bytes):
            p.write_bytes(change)
            return
        doc = json.loads(p.read_text())
        new = change(doc)
        p.write_text(json.dumps(doc if new is None else new))
    return tamper


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return change


def _manifest_doc(content: bytes) -> Callable[[Path], None]:
    return lambda ds: (ds / "manifests" / "00000000.json").write_bytes(content)


def _sparse(rel: str, size: int) -> Callable[[Path], None]:
    def tamper(ds: Path) -> None:
        with (ds / rel).open("wb") as f:
            f.truncate(size)
    return tamper


SAMPLE_DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    # (id, tamper, text the message must contain)
    ("json-is-a-list", _meta_replace(b"[1, 2, 3]"), KEY0),
    ("json-is-a-string", _meta_replace(b'"sample"'), KEY0),
    ("json-invalid", _meta_replace(b'{"index": 0,'), KEY0),
    ("json-deep-nesting", _meta_replace(b"[" * 100_000 + b"]" * 100_000), KEY0),
    ("json-nan", _meta_set("quality.score", float("nan")), KEY0),
    ("index-is-a-list", _meta_set("index", [0]), KEY0),
    ("index-is-a-string", _meta_set("index", "0"), KEY0),
    ("index-huge", _meta_set("index", 10**30), KEY0),
    ("index-negative", _meta_set("index", -7), KEY0),
    ("objects-is-a-dict", _meta_set("objects", {"a": 1}), KEY0),
    ("objects-entry-string", _meta_set("objects", ["thing"]), KEY0),
    ("object-id-string", _meta_set("objects.0.id", "one"), KEY0),
    ("object-id-missing", lambda ds: set_meta(ds, lambda d: d["objects"][0].pop("id")), KEY0),
    ("object-id-huge", _meta_set("objects.0.id", 2**70), KEY0),
    ("object-class-list", _meta_set("objects.0.class", ["a"]), None),
    ("bbox-short", _meta_set("objects.0.bbox", [1, 2]), KEY0),
    ("bbox-strings", _meta_set("objects.0.bbox", ["a", "b", "c", "d"]), KEY0),
    ("bbox-nan", _meta_set("objects.0.bbox", [float("nan"), 0, 1, 1]), KEY0),
    ("camera-missing", lambda ds: set_meta(ds, lambda d: d.pop("camera")), KEY0),
    ("camera-is-a-list", _meta_set("camera", [1]), KEY0),
    ("intrinsics-zero", _meta_set("camera.intrinsics", [[0, 0, 0], [0, 0, 0], [0, 0, 0]]), KEY0),
    ("intrinsics-wrong-shape", _meta_set("camera.intrinsics", [1, 2]), KEY0),
    ("extrinsics-singular", _meta_set("camera.extrinsics", [[0] * 4] * 4), KEY0),
    ("extrinsics-strings", _meta_set("camera.extrinsics", [["a"] * 4] * 4), KEY0),
    ("extrinsics-inf", _meta_set("camera.extrinsics", [[float("inf")] * 4] * 4), KEY0),
    ("views-strings", _views(["a", "b"]), KEY0),
    ("views-without-view", _views([{"intrinsics": [[40, 0, 16], [0, 40, 16], [0, 0, 1]]}, {}]), KEY0),
    ("views-view-is-a-list", _views([{"view": [0]}, {"view": [1]}]), KEY0),
    ("views-is-a-dict", _views({"view": 0}), KEY0),
    ("views-singular", _views([{"view": 0, "intrinsics": [[0] * 3] * 3, "extrinsics": [[0] * 4] * 4},
                               {"view": 1, "intrinsics": [[0] * 3] * 3, "extrinsics": [[0] * 4] * 4}]), KEY0),
    ("seg-garbage", _member(f"{KEY0}.seg.png", b"this is not a png" * 10), f"{KEY0}.seg.png"),
    ("seg-truncated", _member(f"{KEY0}.seg.png", png(np.ones((32, 32), np.uint8))[:60]), f"{KEY0}.seg.png"),
    ("seg-size-mismatch", _seg_small, f"{KEY0}.seg.png"),
    ("seg-rgb", _member(f"{KEY0}.seg.png", png(np.zeros((32, 32, 3), np.uint8))), f"{KEY0}.seg.png"),
    ("seg-bomb", _member(f"{KEY0}.seg.png", bomb_png(60000, 60000)), f"{KEY0}.seg.png"),
    ("seg-missing", _member(f"{KEY0}.seg.png", None), KEY0),
    ("png-garbage", _member(f"{KEY0}.png", b"GIF89a not a png"), f"{KEY0}.png"),
    ("png-bomb", _member(f"{KEY0}.png", bomb_png(50000, 50000)), f"{KEY0}.png"),
    ("png-missing", _member(f"{KEY0}.png", None), KEY0),
    ("json-missing", _member(f"{KEY0}.json", None), KEY0),
    ("duplicate-index", _duplicate_index, KEY1),
    ("hostile-members", add_hostile, "00000000.tar"),
    ("tar-truncated", _truncate, "00000000.tar"),
    ("tar-garbage", _garbage_tar, "00000000.tar"),
    ("tar-empty", lambda ds: (ds / "shards/00000000.tar").write_bytes(b"") or recommit(ds, 0), "00000000.tar"),
]
"""Damage to one sample (or its shard) of the base dataset."""

SHARD_FILES: list[tuple[str, Callable[[Path], None], str]] = [
    ("shard-symlink-dev-zero", _replace_with("shards/00000000.tar", _symlink("/dev/zero")), "00000000.tar"),
    ("shard-symlink-dev-urandom", _replace_with("shards/00000000.tar", _symlink("/dev/urandom")), "00000000.tar"),
    ("shard-symlink-outside", _replace_with("shards/00000000.tar", _outside_copy), "00000000.tar"),
    ("shard-symlink-etc-passwd", _replace_with("shards/00000000.tar", _symlink("/etc/passwd")), "00000000.tar"),
    ("shards-dir-symlink-root", _replace_with("shards", _symlink("/")), "shards"),
    ("shard-is-a-fifo", _replace_with("shards/00000000.tar", _fifo), "00000000.tar"),
    ("shard-is-a-dir", _replace_with("shards/00000000.tar", lambda p: p.mkdir()), "00000000.tar"),
    ("shard-missing", _replace_with("shards/00000000.tar", lambda p: None), "00000000.tar"),
    ("manifest-symlink-dev-zero", _replace_with("manifests/00000000.json", _symlink("/dev/zero")), "00000000.json"),
    ("manifest-is-a-fifo", _replace_with("manifests/00000000.json", _fifo), "00000000.json"),
    ("manifest-is-a-list", _manifest_doc(b"[1, 2]"), "00000000.json"),
    ("manifest-garbage", _manifest_doc(b"\xff\xfe garbage"), "00000000.json"),
]
"""Shard and manifest files that are not what they claim (links out of the dataset, devices, FIFOs)."""

DATASET_JSON: list[tuple[str, Callable[[Path], None], str]] = [
    ("dataset-json-nan", _dataset_json(b'{"name": "tiny", "samples": {"completed": NaN}, "spec": Infinity}'),
     "dataset.json"),
    ("dataset-json-list", _dataset_json(b"[1, 2, 3]"), "dataset.json"),
    ("dataset-json-invalid", _dataset_json(b"{not json"), "dataset.json"),
    ("dataset-json-deep", _dataset_json(b"[" * 100_000 + b"]" * 100_000), "dataset.json"),
    ("dataset-json-spec-list", _dataset_json(_set("spec", [1])), "dataset.json"),
    ("dataset-json-classes-string", _dataset_json(_set("classes", "mug")), "dataset.json"),
    ("dataset-json-classes-ints", _dataset_json(_set("classes", [1, 2])), "dataset.json"),
    ("dataset-json-categories-list", _dataset_json(_set("categories", [1, 2])), "dataset.json"),
    ("dataset-json-coverage-list", _dataset_json(_set("coverage", [1])), "dataset.json"),
    ("dataset-json-coverage-params", _dataset_json(_set("coverage.categories", {"geometry": {"params": {
        "x": {"kind": "numeric", "counts": ["a"], "bins": []}}}})), "dataset.json"),
    ("dataset-json-samples-string", _dataset_json(_set("samples", "many")), "dataset.json"),
    ("dataset-json-quality-list", _dataset_json(_set("quality", [1])), "dataset.json"),
    ("dataset-json-segments-bad", _dataset_json(_set("segments", [{"fromShard": "a"}, 2])), "dataset.json"),
    ("dataset-json-symlink-dev-zero", _replace_with("dataset.json", _symlink("/dev/zero")), "dataset.json"),
    ("dataset-json-fifo", _replace_with("dataset.json", _fifo), "dataset.json"),
    ("dataset-json-huge-sparse", _sparse("dataset.json", 200 << 20), "dataset.json"),
    ("index-parquet-garbage", lambda ds: (ds / "index/metadata.parquet").write_bytes(b"PAR1garbagePAR1"),
     "metadata.parquet"),
    ("index-parquet-fifo", _replace_with("index/metadata.parquet", _fifo), "metadata.parquet"),
    ("index-jsonl-garbage", lambda ds: ((ds / "index/metadata.parquet").unlink(),
                                        (ds / "index/metadata.jsonl").write_bytes(b"[1]\nnot json\n")),
     "metadata.jsonl"),
    ("quarantine-garbage", lambda ds: (ds / "index/quarantine.jsonl").write_bytes(b'{"shard": "x"}\n[2]\n'),
     "quarantine.jsonl"),
]
"""Damage to the dataset's summary and index (what ``report`` and ``preview`` read first)."""


def _commands_for(cid: str) -> dict[str, set[int]]:
    """The commands a sample-level damage is run through, and the exit codes DESIGN allows."""
    run: dict[str, set[int]] = {"validate": {1}, "export": {1}, "preview": {0}}
    if cid.startswith(("intrinsics", "extrinsics", "camera", "views")):
        run = {"validate": {1}, "export nerf": {1}, "preview": {0}}
    if cid.startswith(("png", "tar", "hostile")):
        run["report"] = {0}
    if cid.startswith("tar-") or cid == "hostile-members":
        run["preview"] = {0}
    return run


VALIDATE_LENIENT = {
    "intrinsics-zero": {0, 1}, "extrinsics-singular": {0, 1},  # validate checks shapes, not the camera maths
    "index-parquet-garbage": {0, 1}, "quarantine-garbage": {0, 1}, "index-parquet-fifo": {0, 1},
    "index-jsonl-garbage": {0, 1},  # the index is checked by synthctl index's own checks
    "shards-dir-symlink-root": {1, 2},  # the folder cannot be listed: unreadable input is 2 as well
}
"""Cases where ``validate`` may also pass (exit 0): it does not read what the damage touches."""


def dataset_cases() -> list[Case]:
    out: list[Case] = []
    unread_by_preview = ("intrinsics", "extrinsics", "camera-is", "views", "seg-missing", "json-nan")
    for cid, tamper, names in SAMPLE_DAMAGE:
        for command, exits in _commands_for(cid).items():
            if command == "report":  # reads the index, not the samples: the damage does not reach it
                out.append(_dataset(cid, command, tamper, exits, None))
            elif command == "preview":  # the others are shown; a message must say what was left out
                out.append(_dataset(cid, command, tamper, exits, None if cid.startswith(unread_by_preview)
                                    else names))
            else:
                out.append(_dataset(cid, command, tamper, exits, names))
    for cid, tamper, names in SHARD_FILES:
        runs = {"validate": {1}, "export": {1}, "preview": {0, 1}, "report": {0}}
        for command, exits in runs.items():
            out.append(_dataset(cid, command, tamper, exits,
                                names if command not in ("report",) else None))
    for cid, tamper, names in DATASET_JSON:
        index = cid.startswith(("index", "quarantine"))
        runs = {"report": {2}, "preview": {0}, "export": {0} if index else {1}, "validate": {1}}
        for command, exits in runs.items():
            out.append(_dataset(cid, command, tamper, exits,
                                None if index and command in ("export", "preview") else names))
    return out


def _dataset(cid: str, command: str, tamper: Callable[[Path], None], exits: set[int], names: str | None) -> Case:
    if command == "validate" and cid in VALIDATE_LENIENT:
        exits = VALIDATE_LENIENT[cid]
        names = None if 0 in exits else names

    def prepare(work: Path) -> Argv:
        tamper(work / "ds")
        return _w(_ds(_cmd_args(command), work), work)
    return Case(f"{command.replace(' ', '-')}:{cid}", command.split()[0], prepare, frozenset(exits), names)


def _args_case(cid: str, command: str, args: Argv, exits: set[int], names: str | None,
               setup: Callable[[Path], None] | None = None, **kw: Any) -> Case:
    def prepare(work: Path) -> Argv:
        if setup is not None:
            setup(work)
        return _w(_ds(args, work), work)
    return Case(f"{command}:{cid}", command, prepare, frozenset(exits), names, **kw)


def output_cases() -> list[Case]:
    """Outputs that would overwrite the dataset being read, or land in the working directory."""
    out = []
    for cid, dest in (("into-dataset-json", "{DS}/dataset.json"), ("into-shards", "{DS}/shards/x.html"),
                      ("into-dataset-root", "{DS}/report.html"), ("via-symlink", "{W}/link/report.html")):
        out.append(_args_case(cid, "report", ["report", DS, "--out", dest], {2}, "--out",
                              setup=lambda w: (w / "link").symlink_to(w / "ds"), unchanged=True))
    out.append(_args_case("empty-out", "report", ["report", DS, "--out", ""], {2}, "--out", cwd_check=True))
    for cid, dest in (("into-root", DS), ("into-shards", "{DS}/shards"), ("into-manifests", "{DS}/manifests"),
                      ("into-index", "{DS}/index"), ("into-sub", "{DS}/exports/coco"),
                      ("via-symlink", "{W}/link"), ("via-symlink-sub", "{W}/link/coco")):
        out.append(_args_case(cid, "export", ["export", DS, "--format", "coco", "--out", dest], {2}, "--out",
                              setup=lambda w: (w / "link").symlink_to(w / "ds"), unchanged=True))
    out.append(_args_case("empty-out", "export", ["export", DS, "--format", "coco", "--out", ""], {2}, "--out",
                          cwd_check=True))
    out.append(_args_case("into-dataset", "preview", ["preview", DS, "--out", "{DS}/dataset.json"], {2}, "--out",
                          unchanged=True))
    out.append(_args_case("empty-out", "preview", ["preview", DS, "--out", ""], {2}, "--out", cwd_check=True))
    return out


def location_cases() -> list[Case]:
    """Dataset locations that are not datasets, and an S3 endpoint that never answers."""
    out = []
    s3 = ["--endpoint-url", "http://127.0.0.1:{PORT}"]
    for command, args in (("validate", ["validate", "s3://bucket/ds/v1", *s3]),
                          ("preview", ["preview", "s3://bucket/ds/v1", "--out", "{W}/p.png", *s3]),
                          ("report", ["report", "s3://bucket/ds/v1", "--out", "{W}/r.html", *s3]),
                          ("export", ["export", "s3://bucket/ds/v1", "--format", "coco", "--out", "{W}/o", *s3])):
        out.append(_args_case("s3-never-answers", command, args, {2}, "127.0.0.1"))
    for command in ("validate", "preview", "report", "export"):
        for cid, loc, setup in (("location-dev-zero", "/dev/zero", None),
                                ("location-fifo", "{W}/fifo", lambda w: os.mkfifo(w / "fifo")),
                                ("location-missing", "{W}/nothing", None),
                                ("location-bad-scheme", "ftp://host/x", None)):
            args = [a if a != DS else loc for a in _cmd_args(command, "{W}/o")]
            exits = {2} if command != "validate" else {1, 2}
            if cid == "location-missing" and command in ("preview", "validate"):
                exits = {1, 2}
            out.append(_args_case(cid, command, args, exits, None, setup=setup))
    return out


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        p = work / name
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return setup


def _good_manifest(**fields: Any) -> Callable[[Path], None]:
    return _write("m.yaml", manifest_text(**fields))


def manifest_cases() -> list[Case]:
    """Hostile manifests for the commands that read one."""
    out: list[Case] = []
    readers = {"validate-manifest": ["validate-manifest", "{M}"], "plan": ["plan", "{M}", "--json"],
               "simulate": ["simulate", "{M}", "--json", "--days", "1"]}

    def fifo(w: Path) -> None:
        os.mkfifo(w / "fifo")

    for command, argv in readers.items():
        for cid, path, setup, stdin, exits, names in (
            ("dev-zero", "/dev/zero", None, None, {2}, "larger than"),
            ("dev-urandom", "/dev/urandom", None, None, {2}, "/dev/urandom"),
            ("fifo-no-writer", "{W}/fifo", fifo, None, {2}, "fifo"),
            ("stdin-endless", "-", None, b"# " + b"x" * 3_000_000, {2}, "larger than"),
            ("directory", "{W}", None, None, {2}, None),
            ("missing", "{W}/nope.yaml", None, None, {2}, "nope.yaml"),
            ("duplicate-keys", "{W}/m.yaml", _write("m.yaml", manifest_text() + "spec:\n  samples: 5\n"), None,
             {2}, "duplicate"),
            ("duplicate-nested-keys", "{W}/m.yaml",
             _write("m.yaml", manifest_text().replace("samples: 100", "samples: 100\n  samples: 7")), None,
             {2}, "samples"),
        ):
            args = [a.replace("{M}", path) for a in argv]
            out.append(_args_case(cid, command, args, exits, names, setup=setup, stdin=stdin))
    big = {"a.example.com/blob": "x" * (300 * 1024)}
    pod_cases: list[tuple[str, dict[str, Any], str]] = [
        ("annotations-over-256KiB", {"podTemplate": {"annotations": big}}, "spec.podTemplate.annotations"),
        ("affinity-in-without-values", {"podTemplate": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In"}]}]}}}}}, "spec.podTemplate.affinity"),
        ("affinity-notin-without-values", {"podTemplate": {"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
                {"key": "zone", "operator": "NotIn", "values": []}]}}]}}}}, "spec.podTemplate.affinity"),
        ("affinity-exists-with-values", {"podTemplate": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "Exists", "values": ["a"]}]}]}}}}}, "spec.podTemplate.affinity"),
        ("affinity-gt-not-integer", {"podTemplate": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "gpus", "operator": "Gt", "values": ["many"]}]}]}}}}}, "spec.podTemplate.affinity"),
        ("spread-in-without-values", {"podTemplate": {"topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]}},
         "spec.podTemplate.topologySpreadConstraints"),
        ("asset-uri-encoded-dotdot", {"assets": {"libraries": [{"name": "p", "uri": "file:///srv/lib/%2e%2e/%2e%2e/etc"}]}},
         "spec.assets.libraries[0].uri"),
        ("asset-uri-encoded-dotdot-upper", {"assets": {"libraries": [{"name": "p", "uri": "s3://bucket/a/%2E%2E/b"}]}},
         "spec.assets.libraries[0].uri"),
        ("asset-uri-double-encoded", {"assets": {"environments": [{"uri": "file:///srv/%252e%252e/x"}]}},
         "spec.assets.environments[0].uri"),
        ("asset-uri-encoded-slash", {"assets": {"textures": [{"uri": "file:///srv/..%2fetc"}]}},
         "spec.assets.textures[0].uri"),
    ]
    for cid, fields, names in pod_cases:
        out.append(_args_case(cid, "validate-manifest", ["validate-manifest", "{W}/m.yaml"], {1}, names,
                              setup=_good_manifest(**fields)))
    old_status: list[tuple[str, Any]] = [("next-shard-1e400", "1e400"), ("next-shard-list", [1]),
                                         ("next-shard-dict", {"a": 1}), ("next-shard-negative", -3),
                                         ("next-shard-string", "ten"), ("next-shard-bool", True),
                                         ("status-list", None)]
    for cid, value in old_status:
        def setup(work: Path, value: Any = value, cid: str = cid) -> None:
            doc = yaml.safe_load(manifest_text())
            doc["status"] = [1, 2] if cid == "status-list" else {"nextShard": value}
            text = yaml.safe_dump(doc)
            if value == "1e400":
                text = text.replace("'1e400'", "1e400")
            (work / "old.yaml").write_text(text)
            (work / "m.yaml").write_text(manifest_text(seed=99))
        out.append(_args_case(cid, "validate-manifest",
                              ["validate-manifest", "{W}/m.yaml", "--old", "{W}/old.yaml"],
                              {1, 2}, "old.yaml" if cid != "status-list" else None, setup=setup))
    out.append(_args_case("old-dev-zero", "validate-manifest",
                          ["validate-manifest", "{W}/m.yaml", "--old", "/dev/zero"], {2}, "/dev/zero",
                          setup=_good_manifest()))
    out.append(_args_case("old-fifo", "validate-manifest",
                          ["validate-manifest", "{W}/m.yaml", "--old", "{W}/fifo"], {2}, "fifo",
                          setup=lambda w: (_good_manifest()(w), os.mkfifo(w / "fifo"))))
    return out


def number_cases() -> list[Case]:
    """Absurd numbers for plan and simulate."""
    out: list[Case] = []
    sim = ["simulate", "{W}/m.yaml", "--json"]
    for cid, opts, exits in (
        ("days-1e9", ["--days", "1e9"], {0, 2}), ("days-nan", ["--days", "nan"], {2}),
        ("days-inf", ["--days", "inf"], {0, 2}), ("days-neg-inf", ["--days", "-inf"], {2}),
        ("days-negative", ["--days", "-1"], {2}), ("days-zero", ["--days", "0"], {0, 2}),
        ("gpu-seconds-inf", ["--gpu-seconds-per-sample", "inf"], {1, 2}),
        ("gpu-seconds-nan", ["--gpu-seconds-per-sample", "nan"], {2}),
        ("gpu-seconds-zero", ["--gpu-seconds-per-sample", "0"], {2}),
        ("gpu-seconds-negative", ["--gpu-seconds-per-sample", "-5"], {2}),
        ("gpu-seconds-1e300", ["--gpu-seconds-per-sample", "1e300"], {0, 1}),
        ("tick-tiny", ["--tick", "1e-6"], {0, 1, 2}), ("tick-zero", ["--tick", "0"], {2}),
        ("tick-nan", ["--tick", "nan"], {2}), ("tick-inf", ["--tick", "inf"], {2}),
        ("no-gpus", ["--spot-gpus", "0", "--on-demand-gpus", "0"], {1}),
        ("negative-gpus", ["--spot-gpus", "-4"], {2}),
        ("quota-zero", ["--quota", "1", "--quota-change", "0:0"], {1}),
        ("preemption-nan", ["--preemption-rate", "nan"], {2}),
        ("preemption-negative", ["--preemption-rate", "-1"], {2}),
        ("preemption-inf", ["--preemption-rate", "inf"], {2}),
        ("failure-rate-2", ["--failure-rate", "2"], {2}),
        ("failure-rate-1", ["--failure-rate", "1"], {0, 1}),
        ("quota-change-nan", ["--quota", "2", "--quota-change", "nan:1"], {2}),
        ("quota-change-inf-day", ["--quota", "2", "--quota-change", "inf:1"], {0, 2}),
    ):
        out.append(_args_case(cid, "simulate", [*sim, *opts], exits,
                              None if exits == {0} else (opts[0] if 2 in exits and exits <= {0, 2} else None),
                              setup=_good_manifest()))
    out.append(_args_case("samples-1e11-shard-1", "simulate", [*sim, "--days", "1"], {0, 1, 2}, None,
                          setup=_write("m.yaml", manifest_text(samples=10**11, shardSize=1))))
    out.append(_args_case("samples-1e11-no-days", "simulate", sim, {0, 1, 2}, None,
                          setup=_write("m.yaml", manifest_text(samples=10**11, shardSize=1))))
    plan = ["plan", "{W}/m.yaml", "--json"]
    for cid, opts, exits in (
        ("gpu-seconds-inf", ["--gpu-seconds-per-sample", "inf"], {2}),
        ("gpu-seconds-nan", ["--gpu-seconds-per-sample", "nan"], {2}),
        ("gpu-seconds-1e308", ["--gpu-seconds-per-sample", "1e308"], {0, 1}),
        ("bytes-inf", ["--bytes-per-sample", "inf"], {2}),
        ("bytes-nan", ["--bytes-per-sample", "nan"], {2}),
        ("spot-share-nan", ["--spot-share", "nan"], {2}),
        ("spot-rework-nan", ["--spot-rework", "nan"], {2}),
    ):
        out.append(_args_case(cid, "plan", [*plan, *opts], exits, opts[0] if exits == {2} else None,
                              setup=_good_manifest()))
    out.append(_args_case("samples-1e11-shard-1", "plan", plan, {0, 1}, None,
                          setup=_write("m.yaml", manifest_text(samples=10**11, shardSize=1))))
    out.append(_args_case("throughput-1e15", "plan", plan, {0, 1}, None,
                          setup=_write("m.yaml", manifest_text(throughput={"targetPerDay": 10**15}))))
    out.append(_args_case("deadline-far", "plan", plan, {0, 1}, None,
                          setup=_write("m.yaml", manifest_text(throughput={"deadline": "9999-12-31T23:59:59Z"}))))
    out.append(_args_case("estimates-huge", "plan", plan, {0, 1}, None,
                          setup=_write("m.yaml", manifest_text(estimates={"gpuSecondsPerSample": 1e300}))))
    out.append(_args_case("estimates-huge", "simulate", [*sim, "--days", "2"], {0, 1}, None,
                          setup=_write("m.yaml", manifest_text(estimates={"gpuSecondsPerSample": 1e300}))))
    return out


def _library(catalog: str | bytes | None = None, files: dict[str, bytes] | None = None) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        lib = work / "lib"
        lib.mkdir()
        for rel, data in (files or {}).items():
            (lib / rel).parent.mkdir(parents=True, exist_ok=True)
            (lib / rel).write_bytes(data)
        if catalog is not None:
            (lib / "catalog.yaml").write_bytes(catalog.encode() if isinstance(catalog, str) else catalog)
    return setup


def _glb_ok() -> bytes:
    import trimesh

    data: bytes = trimesh.creation.box(extents=(0.2, 0.2, 0.2)).export(file_type="glb")
    return data


ALIAS_BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"]
                       + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]"
                          for i in range(7)]
                       + ["assets: [{path: mug/a.glb, class: mug, license: '*h'}]"])


def asset_cases() -> list[Case]:
    """Hostile asset libraries for ``assets check`` and render-sample's pre-flight."""
    out: list[Case] = []
    corrupt = b"glTF\x02\x00\x00\x00" + os.urandom(200)
    deep = "assets: " + "[" * 100_000 + "]" * 100_000 + "\n"
    def with_glb(catalog: str | bytes | None, extra: dict[str, bytes] | None = None) -> Callable[[Path], None]:
        def setup(work: Path) -> None:
            _library(catalog, {"mug/a.glb": _glb_ok(), **(extra or {})})(work)
        return setup

    for cid, setup, exits, names in (
        ("catalog-alias-bomb", with_glb(ALIAS_BOMB), {2}, "catalog.yaml"),
        ("catalog-deep-nesting", with_glb(deep), {2}, "catalog.yaml"),
        ("catalog-duplicate-keys", with_glb("assets: []\nassets: [{path: mug/a.glb}]\n"), {2}, "catalog.yaml"),
        ("catalog-python-tag", with_glb("!!python/object/apply:os.system ['true']\n"), {2}, "catalog.yaml"),
        ("catalog-list", with_glb("[1, 2]\n"), {2}, "catalog.yaml"),
        ("catalog-entry-string", with_glb("assets: [mug/a.glb]\n"), {2}, "catalog.yaml"),
        ("catalog-path-dotdot", with_glb("assets: [{path: ../../etc/passwd, class: mug}]\n"), {2}, "catalog.yaml"),
        ("catalog-size-nan", with_glb("assets: [{path: mug/a.glb, sizeMeters: .nan}]\n"), {2}, "catalog.yaml"),
        ("catalog-invalid-utf8", with_glb(b"assets: [{path: \xff\xfe}]\n"), {2}, "catalog.yaml"),
        ("catalog-dev-zero", lambda w: (with_glb(None)(w), (w / "lib/catalog.yaml").symlink_to("/dev/zero")),
         {2}, "catalog.yaml"),
        ("catalog-fifo", lambda w: (with_glb(None)(w), os.mkfifo(w / "lib/catalog.yaml")), {2}, "catalog.yaml"),
        ("only-corrupt-glb", _library(None, {"mug/a.glb": corrupt}), {2}, "mug/a.glb"),
        ("asset-symlink-outside", lambda w: (with_glb(None)(w), (w / "lib/mug/b.glb").symlink_to("/etc/passwd")),
         {1}, "mug/b.glb"),
        ("asset-fifo", lambda w: (with_glb(None)(w), os.mkfifo(w / "lib/mug/c.glb")), {1}, "mug/c.glb"),
        ("empty-library", _library(None, {}), {2}, None),
        ("library-missing", lambda w: None, {2}, None),
    ):
        out.append(_args_case(cid, "assets", ["assets", "check", "file://{W}/lib"], exits, names, setup=setup))
    out.append(_args_case("s3-never-answers", "assets",
                          ["assets", "check", "s3://bucket/lib", "--endpoint-url", "http://127.0.0.1:{PORT}"],
                          {2}, "127.0.0.1"))
    out.append(_args_case("encoded-dotdot", "assets", ["assets", "check", "file:///tmp/%2e%2e/etc"], {2}, "..",
                          setup=None))
    return out


def render_sample_cases() -> list[Case]:
    """render-sample with inputs that must stop it before Blender starts."""
    out: list[Case] = []
    rs = ["render-sample", "{W}/m.yaml", "--index", "0", "--out", "{W}/o"]
    deep = "assets: " + "[" * 100_000 + "]" * 100_000 + "\n"

    def lib_manifest(uri: str, *, env: bool = False) -> Callable[[Path], None]:
        def setup(work: Path) -> None:
            assets = {"environments": [{"uri": uri}]} if env else {"libraries": [{"name": "props", "uri": uri}]}
            cats = [{"name": "composition", "assets": {"libraries": ["props"], "share": 1.0}}] if not env else \
                [{"name": "composition"}]
            (work / "m.yaml").write_text(manifest_text(assets=assets, categories=cats))
        return setup

    for cid, setup, args, exits, names in (
        ("library-unreachable", lib_manifest("file:///nonexistent/lib"), rs, {2}, "spec.assets"),
        ("environment-unreachable", lib_manifest("file:///nonexistent/hdri", env=True), rs, {2}, "spec.assets"),
        ("library-s3-never-answers", lib_manifest("s3://bucket/lib"), rs, {2}, "spec.assets"),
        ("library-deep-catalog", lambda w: (lib_manifest(f"file://{w}/lib")(w), _library(deep, {})(w)), rs, {2},
         "catalog.yaml"),
        ("library-only-corrupt-glb", lambda w: (lib_manifest(f"file://{w}/lib")(w),
                                                _library(None, {"mug/a.glb": b"glTF\x02" + b"\0" * 50})(w)),
         rs, {2}, "spec.assets"),
        ("generate-library-only-corrupt-glb", lambda w: (lib_manifest(f"file://{w}/lib")(w),
                                                         _library(None, {"mug/a.glb": b"glTF\x02" + b"\0" * 50})(w)),
         ["generate", "{W}/m.yaml", "--out", "{W}/o", "-j", "1", "--progress", "lines"], {2}, "mug/a.glb"),
        ("generate-library-deep-catalog", lambda w: (lib_manifest(f"file://{w}/lib")(w), _library(deep, {})(w)),
         ["generate", "{W}/m.yaml", "--out", "{W}/o", "-j", "1", "--progress", "lines"], {2}, "catalog.yaml"),
        ("out-unwritable", lambda w: (_good_manifest()(w), (w / "ro").mkdir(), os.chmod(w / "ro", 0o500)),
         ["render-sample", "{W}/m.yaml", "--index", "0", "--out", "/proc/version/x"], {2}, "--out"),
        ("out-is-a-file", lambda w: (_good_manifest()(w), (w / "f").write_text("x")),
         ["render-sample", "{W}/m.yaml", "--index", "0", "--out", "{W}/f"], {2}, None),
        ("index-negative", _good_manifest(), ["render-sample", "{W}/m.yaml", "--index", "-1", "--out", "{W}/o"],
         {2}, "--index"),
        ("index-huge", _good_manifest(), ["render-sample", "{W}/m.yaml", "--index", str(10**30), "--out", "{W}/o"],
         {2}, "--index"),
        ("manifest-dev-zero", None, ["render-sample", "/dev/zero", "--index", "0", "--out", "{W}/o"], {2},
         "larger than"),
        ("manifest-fifo", lambda w: os.mkfifo(w / "fifo"),
         ["render-sample", "{W}/fifo", "--index", "0", "--out", "{W}/o"], {2}, "fifo"),
        ("captioner-module-path", _write("m.yaml", manifest_text(render={"captioner": "os:system"})), rs, {1, 2},
         "captioner"),
    ):
        out.append(_args_case(cid, "render-sample", args, exits, names, setup=setup,
                              env={"SYNTH_ASSET_CACHE_DIR": "{W}/cache"}))
    return out


def all_cases() -> list[Case]:
    return [*dataset_cases(), *output_cases(), *location_cases(), *manifest_cases(), *number_cases(),
            *asset_cases(), *render_sample_cases()]


def check_side_effects(case: Case, work: Path, before: dict[str, str] | None) -> list[str]:
    bad = []
    if case.cwd_check and any((work / "cwd").iterdir()):
        bad.append("wrote into the working directory: " + ", ".join(p.name for p in (work / "cwd").iterdir()))
    if before is not None and snapshot(work / "ds") != before:
        bad.append("changed the dataset it reads")
    return bad


def run_and_judge(case: Case, work: Path, *, base: Path, port: int) -> tuple[Outcome, list[str]]:
    """Run one case and list what is wrong with it (the test and the report script share this)."""
    shutil.copytree(base, work / "ds", symlinks=True)
    before: dict[str, str] | None = None
    if case.unchanged:
        prep = case.prepare

        def prepare(w: Path) -> Argv:
            nonlocal before
            argv = prep(w)
            before = snapshot(w / "ds")
            return argv
        case = copy.copy(case)
        object.__setattr__(case, "prepare", prepare)
    outcome, _ = run_case(case, work, base=base, port=port)
    return outcome, verdict(case, outcome) + ([] if outcome.hung else check_side_effects(case, work, before))
