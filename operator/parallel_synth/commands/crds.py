"""CRD generation: turn the pydantic models of ``api.py`` into structural CRD YAML.

Pydantic emits JSON Schema with ``$ref``/``$defs`` and ``anyOf`` for optionals; Kubernetes wants a
structural OpenAPI v3 schema: every node typed, no references, no ``anyOf`` of types, defaults
and validation inline. This module does that translation, adds the printer columns, short names,
categories and the status subresource, and returns plain dicts (no I/O).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from synth_contract.api import (
    GROUP,
    VERSION,
    RenderBatchSpec,
    RenderBatchStatus,
    SynthDatasetSpec,
    SynthDatasetStatus,
)
from synth_contract.immutability import TRANSITION_RULES

_KEEP = (
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "format",
    "x-kubernetes-validations",
    "default",
)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        merged = dict(defs[name])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    return node


def to_structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = to_structural(node["allOf"][0], defs)
        return {**inner, **{k: v for k, v in node.items() if k in _KEEP and k != "default"}}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf with several non-null types: {node}")
        inner = to_structural(options[0], defs)
        for k in ("description", "x-kubernetes-validations"):
            if k in node:
                inner[k] = node[k]
        return inner
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key in node:
            out[key] = node[key]
    # JSON Schema writes an exclusive bound as a number; Kubernetes' OpenAPI v3.0 schema wants
    # `minimum: x` plus `exclusiveMinimum: true` (a number there makes the API server reject the CRD).
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if not isinstance(out.get(flag, True), bool):
            out[bound] = out[flag]
            out[flag] = True
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", "string")
    if out.get("format") == "date-time":
        out["type"] = "string"
    # Scalar defaults go into the CRD so that the API server's CEL rules see the same values as
    # the models (e.g. workers.max defaults to 4 when only workers.min is set). Defaults of
    # lists and objects stay in the models only.
    if isinstance(out.get("default"), (dict, list)) or out.get("default") is None:
        out.pop("default", None)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        out["type"] = "object"
        props = node.get("properties", {})
        if props:
            out["properties"] = {k: to_structural(v, defs) for k, v in props.items()}
            required = node.get("required")
            if required:
                out["required"] = list(required)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = to_structural(extra, defs)
        elif not props:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = to_structural(node.get("items", {}), defs)
    if "type" not in out:
        raise ValueError(f"untyped schema node: {node}")
    return out


def _schema_of(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    defs = raw.pop("$defs", {})
    return to_structural(raw, defs)


_METADATA_CEL = [
    {
        "rule": "size(self.metadata.name) <= 63",
        "message": "metadata.name must be at most 63 characters (it becomes a label value)",
    }
]


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    spec_model: type,
    status_model: type,
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    spec = _schema_of(spec_model)
    status = _schema_of(status_model)
    schema = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version."},
            "kind": {"type": "string", "description": "Kind."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": _METADATA_CEL,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "parallel-synth", "app.kubernetes.io/part-of": "parallel-synth"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["synth"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _col(name: str, path: str, kind: str = "string", description: str = "", priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if description:
        col["description"] = description
    if priority:
        col["priority"] = priority
    return col


def synthdataset_crd() -> dict[str, Any]:
    crd = _crd(
        kind="SynthDataset",
        plural="synthdatasets",
        short="sds",
        spec_model=SynthDatasetSpec,
        status_model=SynthDatasetStatus,
        description="A synthetic image dataset rendered by parallel-synth.",
        columns=[
            _col("Phase", ".status.phase", description="Lifecycle phase"),
            _col("Progress", ".status.progress", description="Completed fraction"),
            _col("Samples", ".status.samples.completed", "integer", "Committed samples"),
            _col("Rate/Day", ".status.samplesPerDay", "number", "Measured samples per day"),
            _col("Workers", ".status.workers.active", "integer", "Rendering pods running"),
            _col("Admitted", ".status.workers.admission", description="With spec.queue: pods Kueue admitted/requested"),
            _col("ETA", ".status.eta", description="Estimated completion"),
            _col("Cost", ".status.cost.dollars", "number", "Dollars spent"),
            _col("Busy", ".status.renderBusyRatio", "number", "Share of the workers' time inside the render call"),
            _col("Age", ".metadata.creationTimestamp", "date"),
            _col("Target", ".spec.samples", "integer", "Target samples", priority=1),
            _col("Desired", ".status.workers.desired", "integer", "Workers wanted", priority=1),
            _col("Projected", ".status.cost.projectedDollars", "number", "Projected cost", priority=1),
        ],
    )
    # Transition rules (oldSelf) on the root: they need the old status to know the dataset started.
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["x-kubernetes-validations"] = [*root["x-kubernetes-validations"], *TRANSITION_RULES]
    return crd


def renderbatch_crd() -> dict[str, Any]:
    return _crd(
        kind="RenderBatch",
        plural="renderbatches",
        short="rb",
        spec_model=RenderBatchSpec,
        status_model=RenderBatchStatus,
        description="A window of shards of a SynthDataset, rendered by one Indexed Job per attempt.",
        columns=[
            _col("Dataset", ".spec.dataset", description="Owning SynthDataset"),
            _col("Shards", ".spec.shardCount", "integer", "Shards in the batch"),
            _col("Done", ".status.shardsDone", "integer", "Committed shards"),
            _col("Phase", ".status.phase"),
            _col("Attempt", ".status.attempt", "integer", "Job attempt"),
            _col("Preemptions", ".status.preemptions", "integer", "Pods preempted"),
            _col("Age", ".metadata.creationTimestamp", "date"),
            _col("Start", ".spec.shardStart", "integer", "First shard", priority=1),
            _col("Job", ".status.job", description="Current Job", priority=1),
        ],
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object."""
    return {
        f"{GROUP}_synthdatasets.yaml": synthdataset_crd(),
        f"{GROUP}_renderbatches.yaml": renderbatch_crd(),
    }


def render_yaml(obj: dict[str, Any]) -> str:
    header = "# Generated by `synthctl crds` from contract/synth_contract/api.py. Do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, width=100)


@click.command("crds")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write one YAML file per CRD (default: print to stdout).")
def crds(out: Path | None) -> None:
    """Write the CRDs generated from the API models."""
    docs = all_crds()
    if out is None:
        click.echo("---\n".join(render_yaml(d) for d in docs.values()), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / name).write_text(render_yaml(doc))
        click.echo(f"wrote {out / name}")
