"""``synthctl validate`` on a dataset whose shard tar holds hostile members.

A shard is an archive from a bucket anyone with write access could have filled: absolute paths,
``..`` components, symlinks and hard links pointing outside, device nodes, FIFOs and huge members.
The validator must report each one (``hostile-member``) and extract nothing anywhere: the files on
disk are the same before and after, in a local folder and for an S3 bucket (moto on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SYNTHCTL = str(Path(sys.executable).parent / "synthctl")


def _member(name: str, data: bytes = b"", **kw: Any) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def hostile_tar(outside: Path) -> tuple[bytes, list[str]]:
    """A shard tar with one good-looking sample and a zoo of hostile members."""
    meta = json.dumps({"index": 0, "key": "000000000000", "shard": 0}).encode()
    members = [
        _member("000000000000.json", meta),
        _member("000000000000.png", b"\x89PNG\r\n\x1a\n"),
        _member(str(outside / "absolute.txt"), b"absolute path"),
        _member("../../escape.txt", b"dot-dot"),
        _member("000000000001/../../../escape2.txt", b"nested dot-dot"),
        _member("evil-symlink", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        _member("evil-hardlink", type=tarfile.LNKTYPE, linkname="/etc/passwd"),
        _member("evil-device", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
        _member("evil-fifo", type=tarfile.FIFOTYPE),
        _member("000000000002.png", b"\0" * (2 * 1024 * 1024 + 17)),
    ]
    hostile = [m[0].name for m in members[2:]]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue(), hostile


def manifest_for(data: bytes) -> bytes:
    return json.dumps({"shard": 0, "samples": 1, "firstIndex": 0, "sha256": hashlib.sha256(data).hexdigest(),
                       "bytes": len(data), "categories": {"geometry": 1}}).encode()


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (p.readlink().as_posix() if p.is_symlink() else
                                       hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def run_validate(location: str, cwd: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([SYNTHCTL, "validate", location, "--max-member-mb", "1", "--report", "-", *extra],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "AWS_ACCESS_KEY_ID": "t",
                               "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"})
    out = proc.stdout + proc.stderr
    start = proc.stdout.find("{")
    doc, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
    return proc.returncode, doc, out


def assert_reported(code: int, doc: dict[str, Any], out: str, hostile: list[str]) -> None:
    """Each hostile member is named in a ``hostile-member`` problem; exit non-zero; no traceback."""
    assert code != 0, out
    assert "Traceback" not in out, out
    reported = {p["where"] + " " + p["message"] for p in doc["problems"] if p["code"] == "hostile-member"}
    for name in hostile:
        assert any(name in r for r in reported), f"{name!r} not reported as hostile:\n{out}"


def assert_nothing_escaped(tmp_path: Path, work: Path) -> None:
    assert not (tmp_path / "outside").exists()
    for rel in ("../../escape.txt", "000000000001/../../../escape2.txt"):
        assert not (work / rel).resolve().exists(), rel


def test_hostile_members_in_a_folder_are_reported_and_nothing_is_extracted(tmp_path: Path) -> None:
    root = tmp_path / "data" / "ds" / "v1"
    (root / "shards").mkdir(parents=True)
    (root / "manifests").mkdir()
    data, hostile = hostile_tar(tmp_path / "outside")
    (root / "shards" / "00000000.tar").write_bytes(data)
    (root / "manifests" / "00000000.json").write_bytes(manifest_for(data))
    work = tmp_path / "cwd"
    work.mkdir()
    before = snapshot(tmp_path)
    code, doc, out = run_validate(str(root), work)
    assert_reported(code, doc, out, hostile)
    assert snapshot(tmp_path) == before, "validate wrote or extracted files"
    assert_nothing_escaped(tmp_path, work)


@pytest.fixture
def moto() -> Iterator[Any]:
    from box.s3 import MotoS3

    server = MotoS3().start()
    yield server
    server.stop()


def test_hostile_members_in_a_bucket_are_reported_and_nothing_is_extracted(tmp_path: Path, moto: Any) -> None:
    client = moto.client()
    client.create_bucket(Bucket="hostile")
    data, hostile = hostile_tar(tmp_path / "outside")
    client.put_object(Bucket="hostile", Key="data/ds/v1/shards/00000000.tar", Body=data)
    client.put_object(Bucket="hostile", Key="data/ds/v1/manifests/00000000.json", Body=manifest_for(data))
    work = tmp_path / "cwd"
    work.mkdir()
    before = snapshot(tmp_path)
    code, doc, out = run_validate("s3://hostile/data/ds/v1", work, "--endpoint-url", moto.url)
    assert_reported(code, doc, out, hostile)
    assert snapshot(tmp_path) == before, "validate wrote or extracted files"
    assert_nothing_escaped(tmp_path, work)
