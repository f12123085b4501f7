"""Reading a dataset through a ``Store``: strict, bounded reads and the shards a folder lists.

A dataset folder may come from anyone with write access to a bucket or a disk: a shard can be
a symlink to ``/dev/zero`` or out of the dataset, a FIFO that no one writes to (opening it would
block for ever), a directory. :func:`open_file` refuses all of these with :class:`BadFile` (an
``OSError`` naming the file and what it is) before opening anything, and :func:`read` never
reads more than its limit plus one byte.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from synth_contract import layout
from synth_contract.store import FileStore, Store

MAX_JSON_BYTES = 64 * 1024 * 1024
"""``dataset.json``, a shard manifest or a quarantine list larger than this is refused, not read."""


class BadFile(OSError):
    """A dataset file that is not a regular file inside the dataset (a link out, a FIFO, a device)."""


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(files: Store, rel: str) -> None:
    """Raise :class:`BadFile` unless ``rel`` is a regular file inside a local store (S3 objects always are).

    ``FileNotFoundError`` when it does not exist.
    """
    if not isinstance(files, FileStore):
        return
    base = os.path.realpath(files.root)
    if not os.path.lexists(os.path.join(base, rel)):
        raise FileNotFoundError(f"{rel}: does not exist")
    full = os.path.join(base, rel)
    real = os.path.realpath(full)
    if real != base and not real.startswith(base + os.sep):
        raise BadFile(f"{rel}: resolves to {real}, outside the dataset (a symlink out of it)")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        raise BadFile(f"{rel}: is a dangling symlink (to {real})") from None
    if not stat.S_ISREG(mode):
        raise BadFile(f"{rel}: is {_what(mode)}, not a regular file")


class GuardedFileStore(FileStore):
    """A local dataset as the read-only commands see it: a file that is not a regular file inside the
    dataset (a FIFO, a device, a symlink out of it) exists, but opening it raises :class:`BadFile`
    naming it, and a folder that links out of the dataset is a :class:`BadFile` when listed; never a
    ``ValueError`` from the store's root check, never a blocking open."""

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._full(path))

    def size(self, path: str) -> int | None:
        try:
            return super().size(path)
        except ValueError:  # resolves outside the dataset: the link's own size
            return os.lstat(self._full(path)).st_size if os.path.lexists(self._full(path)) else None

    def open(self, path: str) -> BinaryIO:
        check_regular(self, path)
        return super().open(path)

    def read_bytes(self, path: str) -> bytes | None:
        if not os.path.lexists(self._full(path)):
            return None
        check_regular(self, path)
        return super().read_bytes(path)

    def list(self, prefix: str) -> Iterator[str]:
        try:
            yield from super().list(prefix)
        except ValueError:
            raise BadFile(f"{prefix}/: resolves to {os.path.realpath(self._full(prefix))}, outside the dataset "
                          "(a symlink out of it)") from None


def open_file(files: Store, rel: str) -> BinaryIO:
    """``files.open(rel)`` after :func:`check_regular`."""
    check_regular(files, rel)
    return files.open(rel)


def exists(files: Store, rel: str) -> bool:
    """Whether ``rel`` exists (as anything: a FIFO or a link out exists, and :func:`open_file` says why
    it cannot be read)."""
    if isinstance(files, FileStore):
        return os.path.lexists(os.path.join(files.root, rel))
    return files.exists(rel)


def read(files: Store, rel: str, *, limit: int | None = None) -> bytes:
    """The file's bytes; ``FileNotFoundError`` when it does not exist, :class:`BadFile` when it is not a
    regular file in the dataset or (with ``limit``) larger than ``limit`` bytes."""
    with open_file(files, rel) as f:
        if limit is None:
            return f.read()
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadFile(f"{rel}: larger than {limit:,} bytes")
    return data


def read_json(files: Store, rel: str, *, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value of a file (at most ``limit`` bytes); ``ValueError`` (or ``RecursionError``) when it is
    not JSON, :class:`BadFile` / ``FileNotFoundError`` when it cannot be read."""
    return json.loads(read(files, rel, limit=limit))


def strict_json(data: bytes) -> Any:
    """JSON as RFC 8259 has it: ``NaN`` and ``Infinity`` (which Python's parser accepts) are refused."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    return json.loads(data, parse_constant=refuse)


Shape = Any
_NUM = (int, float)
_COUNTS: Shape = ("map", _NUM)
SUMMARY_SHAPE: Shape = {
    "name": str, "version": str, "createdAt": str, "bytes": _NUM, "renderSeconds": _NUM,
    "samples": {"target": int, "completed": int}, "shards": {"total": int, "completed": int},
    "categories": ("map", {"target": int, "completed": int, "quarantined": int}),
    "quality": ("map", (int, float, str, bool, type(None))),
    "segments": ("list", {"fromShard": int, "toShard": int, "categories": ("map", {"target": int, "completed": int})}),
    "quarantine": {"samples": int, "categories": _COUNTS, "reasons": _COUNTS},
    "classes": ("list", {"id": int, "name": str}),
    "coverage": {"diversity": _NUM, "samples": int, "categories": ("map", {
        "samples": int, "diversity": _NUM, "classes": _COUNTS, "environments": _COUNTS,
        "params": ("map", {"kind": str, "counts": ("any", ("list", _NUM), _COUNTS), "bins": ("list", _NUM)}),
        "strata": ("map", {"balance": (int, float, type(None)), "counts": _COUNTS})})},
    "spec": dict,
}
"""The types of the ``dataset.json`` fields the commands read (a field may be absent; when present it
must have this shape). A tuple ``("map", S)`` is a mapping of S, ``("list", S)`` a list of S,
``("any", A, B)`` either."""


def shape_problem(value: Any, shape: Shape, where: str) -> str | None:
    """The first place where ``value`` does not have ``shape``, as ``where.field: what``; None when it does."""
    if isinstance(shape, tuple) and shape and shape[0] in ("map", "list", "any"):
        if shape[0] == "any":
            found = [shape_problem(value, s, where) for s in shape[1:]]
            return None if None in found else found[0]
        kind, inner = shape
        if kind == "map":
            if not isinstance(value, dict):
                return f"{where}: must be a mapping, not {type(value).__name__}"
            items = [(f"{where}.{str(k)[:40]}", v) for k, v in value.items()]
        else:
            if not isinstance(value, list):
                return f"{where}: must be a list, not {type(value).__name__}"
            items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
        for w, v in items:
            bad = shape_problem(v, inner, w)
            if bad:
                return bad
        return None
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where}: must be a mapping, not {type(value).__name__}"
        for key, inner in shape.items():
            if key in value:
                bad = shape_problem(value[key], inner, f"{where}.{key}")
                if bad:
                    return bad
        return None
    kinds = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in kinds:
        return f"{where}: must be {' or '.join(k.__name__ for k in kinds)}, not a boolean"
    if not isinstance(value, kinds):
        return f"{where}: must be {' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return f"{where}: {str(value)[:20]}... is out of range (a 64-bit integer)"
    return None


class BadSummary(ValueError):
    """``dataset.json`` is there but unusable (not JSON, the wrong shape, an invalid spec): names the field."""


def load_summary(files: Store) -> tuple[dict[str, Any], Any] | None:
    """(``dataset.json`` as a dict, its spec as a ``SynthDatasetSpec``); None when the dataset has no summary.

    The one loader of ``dataset.json`` for the commands (export, preview, report, generate):
    raises :class:`BadSummary` naming ``dataset.json`` and the field when it cannot be used.
    """
    from pydantic import ValidationError

    from synth_contract.api import SynthDatasetSpec
    from synth_contract.layout import DATASET_JSON
    from synth_contract.validation import errors_from_pydantic

    if not exists(files, DATASET_JSON):
        return None
    try:
        doc = strict_json(read(files, DATASET_JSON, limit=MAX_JSON_BYTES))
    except RecursionError:
        raise BadSummary(f"{DATASET_JSON}: not valid JSON: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise BadSummary(f"{DATASET_JSON}: not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise BadSummary(f"{DATASET_JSON}: not valid JSON: {str(exc)[:200]}") from None
    except (BadFile, IsADirectoryError, PermissionError) as exc:
        raise BadSummary(f"{DATASET_JSON}: cannot be read: {exc}") from None
    bad = shape_problem(doc, SUMMARY_SHAPE, DATASET_JSON)
    if bad:
        raise BadSummary(bad)
    if "spec" not in doc:
        raise BadSummary(f"{DATASET_JSON}: has no spec")
    try:
        spec = SynthDatasetSpec.model_validate(doc["spec"])
    except ValidationError as exc:
        first = errors_from_pydantic(exc, prefix="spec")[0]
        raise BadSummary(f"{DATASET_JSON}: {first}") from None
    return doc, spec


def numbered(files: Store, folder: str, suffix: str) -> list[int]:
    """The shard numbers of the ``{folder}/{shard:08d}{suffix}`` files, sorted."""
    return sorted(n for rel in files.list(folder) if (n := layout.shard_of(rel, folder, suffix)) is not None)


def committed_shards(files: Store) -> list[int]:
    """Shards that have a manifest (the commit marker), sorted."""
    return numbered(files, layout.MANIFESTS, ".json")


def listed_manifests(files: Store) -> list[int]:
    """Shards whose manifest name is listed, whatever the file is (a FIFO or a link out of the dataset
    too, which :func:`committed_shards` leaves out silently): the readers then say why it is unusable."""
    if not isinstance(files, FileStore):
        return committed_shards(files)
    folder = os.path.join(files.root, layout.MANIFESTS)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for name in names
                  if (n := layout.shard_of(f"{layout.MANIFESTS}/{name}", layout.MANIFESTS, ".json")) is not None)


def read_manifest(files: Store, shard: int) -> dict[str, Any]:
    """A shard's manifest as a JSON object; ``ValueError`` naming it when it cannot be used."""
    rel = layout.manifest_path(shard)
    try:
        doc = strict_json(read(files, rel, limit=MAX_JSON_BYTES))
    except RecursionError:
        raise ValueError(f"{rel}: not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{rel}: not valid JSON: {str(exc)[:200]}") from None
    except (BadFile, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise ValueError(f"{rel}: cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{rel}: must be a JSON object, not {type(doc).__name__}")
    return doc
