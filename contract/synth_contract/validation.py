"""Spec validation with errors that name the field and what is allowed.

Used by ``synthctl validate-manifest``, by the local generator and by the operator (which turns
the errors into a ``SpecValid=False`` condition and a Warning Event). Pure: time is an argument.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
import yaml
from pydantic import ValidationError

from synth_contract.api import SynthDataset, SynthDatasetSpec

MAX_MANIFEST_BYTES = 1_000_000
"""A SynthDataset manifest larger than this is refused before parsing (etcd's limit is 1.5 MiB)."""


@dataclass(frozen=True)
class FieldError:
    """One problem: a dotted field path and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _path(loc: tuple[int | str, ...], prefix: str) -> str:
    parts: list[str] = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            else:
                parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts) or "(root)"


_TYPE_WORDS = {
    "int_type": "an integer (not a boolean, a string or a fraction)",
    "float_type": "a number (not a boolean or a string)",
    "bool_type": "true or false (not a number or a string)",
    "string_type": "a string",
}
"""Strict-type errors (pydantic's ``*_type``), worded as the CRD's ``type`` would refuse them."""


def _shown(value: Any) -> str:
    """A short YAML-ish rendering of a refused value (``true``, ``.inf``, ``'5'``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return ".nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def errors_from_pydantic(exc: ValidationError, *, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; fields are camelCase)"
        elif err["type"] == "enum" and "expected" in err.get("ctx", {}):
            msg = f"{err['input']!r} is not allowed; allowed: {err['ctx']['expected']}"
        elif err["type"] in _TYPE_WORDS:
            msg = f"{_shown(err.get('input'))} is not allowed: must be {_TYPE_WORDS[err['type']]}"
        elif err["type"] == "finite_number":
            msg = f"{_shown(err.get('input'))} is not allowed: must be a finite number"
        out.append(FieldError(_path(loc, prefix), msg))
    return out


def semantic_errors(spec: SynthDatasetSpec, *, now: datetime) -> list[FieldError]:
    """Checks that depend on the time of submission (so they are not part of the model)."""
    errors = []
    deadline = spec.throughput.deadline
    if deadline is not None:
        aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        if aware <= now:
            errors.append(
                FieldError(
                    "spec.throughput.deadline",
                    f"{deadline.isoformat()} is in the past (now is {now.isoformat(timespec='seconds')})",
                )
            )
    return errors


def validate_document(raw: Any, *, now: datetime) -> tuple[SynthDataset | None, list[FieldError]]:
    """Validate a whole SynthDataset object (apiVersion, kind, metadata.name, spec)."""
    if not isinstance(raw, dict):
        return None, [FieldError("(root)", f"a SynthDataset must be a mapping, got {type(raw).__name__}")]
    try:
        obj = SynthDataset.model_validate(raw)
    except ValidationError as exc:
        return None, errors_from_pydantic(exc)
    errors = semantic_errors(obj.spec, now=now)
    return (None if errors else obj), errors


def spec_from_json(text: str, *, source: str = "SYNTH_SPEC_JSON") -> SynthDatasetSpec:
    """The dataset spec handed to pods as JSON: a bare spec or a whole SynthDataset object.

    Raises ``ValueError`` that names the source and, for a bad spec, each field.
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict) and "spec" in raw and "kind" in raw:
        raw = raw["spec"]
    try:
        return SynthDatasetSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(str(e) for e in errors_from_pydantic(exc, prefix="spec"))
        raise ValueError(f"invalid dataset spec: {problems}") from None


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no billion-laughs expansion) and duplicate keys.

    YAML requires the keys of a mapping to be unique; PyYAML keeps the last one silently, so a
    manifest with two ``samples:`` would mean something other than what its first reader saw.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in manifests", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: SafeLoader refuses it itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {str(key)[:60]!r} (YAML keys must be unique)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


StrictSafeLoader = _SafeLoader
"""The manifests' YAML loader (no aliases, no duplicate keys, no Python tags), for other YAML inputs
such as an asset library's ``catalog.yaml``."""


def load_manifest_text(text: str) -> list[Any]:
    """Parse YAML documents safely: size-limited, no aliases, no Python tags."""
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest is larger than {MAX_MANIFEST_BYTES:,} bytes")
    return [d for d in yaml.load_all(text, Loader=_SafeLoader) if d is not None]


def find_datasets(docs: list[Any]) -> list[tuple[int, Any]]:
    """The SynthDataset documents of a (possibly multi-document) manifest, with their positions.

    A lone document is taken whatever its kind (its ``kind`` is then checked by the model).
    """
    if len(docs) == 1:
        return [(0, docs[0])]
    return [(i, d) for i, d in enumerate(docs) if isinstance(d, dict) and d.get("kind") == "SynthDataset"]


def find_dataset(docs: list[Any]) -> Any:
    """The one SynthDataset document of a (possibly multi-document) manifest."""
    found = find_datasets(docs)
    if not found:
        raise ValueError("no document with kind: SynthDataset in the manifest")
    if len(found) > 1:
        raise ValueError(f"the manifest holds {len(found)} SynthDataset documents (documents "
                         f"{', '.join(str(i + 1) for i, _ in found)}); this command takes one: split the file "
                         "(synthctl validate-manifest checks them all)")
    return found[0][1]


EXIT_PROBLEMS = 1
"""The thing checked (a manifest, a dataset) has problems."""
EXIT_USAGE = 2
"""The command was used wrongly, or its input cannot be read."""


INPUT_WAIT_SECONDS = 10.0
"""How long a manifest that is a pipe or FIFO may stay silent before it counts as unreadable."""


def read_capped(path: str, limit: int, *, wait: float = INPUT_WAIT_SECONDS) -> bytes:
    """The bytes of a file, FIFO or ``-`` (stdin), reading at most ``limit + 1`` of them.

    Raises ``ValueError`` when there are more than ``limit`` bytes (``/dev/zero`` stops there),
    when a FIFO or pipe sends nothing for ``wait`` seconds (a FIFO with no writer never does),
    and ``OSError`` when the path cannot be opened (a directory, no permission).
    """
    import os
    import select
    import stat

    if path == "-":
        fd, close = sys.stdin.fileno(), False
    else:
        fd, close = os.open(path, os.O_RDONLY | os.O_NONBLOCK), True  # a FIFO opens without a writer
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path}: is a directory")
        waits = (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)) and not os.isatty(fd)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            if waits:
                ready, _, _ = select.select([fd], [], [], wait)
                if not ready:
                    kind = "FIFO or pipe" if stat.S_ISFIFO(mode) else "device or socket"
                    raise ValueError(f"nothing to read for {wait:g}s (a {kind} with no writer?)")
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        if close:
            os.close(fd)
    if size > limit:
        raise ValueError(f"larger than {limit:,} bytes")
    return b"".join(chunks)


def read_documents(path: str) -> list[Any]:
    """The YAML documents of a manifest file ('-' for stdin), read at most limit + 1 bytes."""
    data = read_capped(path, MAX_MANIFEST_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    return load_manifest_text(text)


def read_manifest(path: str) -> Any:
    """Read a manifest file ('-' for stdin) and return its SynthDataset document."""
    return find_dataset(read_documents(path))


def load_dataset(path: str) -> SynthDataset:
    """The valid SynthDataset of a manifest, or exit: 2 if unreadable, 1 with each field problem."""
    try:
        raw = read_manifest(path)
    except Exception as exc:  # YAML errors, aliases, size, nesting, missing document: all user input
        click.echo(f"{path}: cannot read manifest: {one_line(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    obj, errors = validate_document(raw, now=datetime.now(UTC))
    if errors or obj is None:
        click.echo(f"{path}: {len(errors)} problem(s):", err=True)
        for e in errors:
            click.echo(f"  {e}", err=True)
        sys.exit(EXIT_PROBLEMS)
    return obj


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The error as one line of at most ``limit`` characters (for messages to a person)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, RecursionError):
        text = "nested too deeply"
    return text if len(text) <= limit else text[: limit - 3] + "..."
