"""The cluster admin's policy over SynthDatasets: what a namespace user may ask the operator to run.

Anyone who may create a SynthDataset chooses the image the rendering pods run, where they are
scheduled, which Secret's AWS keys they receive and (``render.captioner: module:function``) which
module the renderer imports. The operator therefore checks each spec
against :class:`~parallel_synth.settings.PolicySettings` and :class:`~parallel_synth.settings.PodSettings`
(chart values -> ``SYNTH_OPERATOR_*``)
before it creates anything; a violation becomes ``SpecValid=False`` with the field path and a
``SpecInvalid`` Warning Event, exactly like a malformed spec. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlparse

from parallel_synth.settings import Settings
from synth_contract.api import SynthDatasetSpec
from synth_contract.validation import FieldError

CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
"""Taint keys that keep workloads off the control plane: never tolerated unless explicitly allowed."""


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "(none)"


def _on_volume(uri: str, root: str) -> bool:
    """Whether the folder of a ``file://`` URI is ``root`` (the shared volume's mount) or below it."""
    path = posixpath.normpath(unquote(urlparse(uri).path) or "/")
    return path == root or path.startswith(root.rstrip("/") + "/")


def output_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    """``file://`` on a cluster writes into the pod's emptyDir: refused unless a shared volume is set up."""
    uri = spec.output.uri
    if not uri.startswith("file://"):
        return []
    if not settings.pods.file_output_claim:
        return [FieldError("spec.output.uri", f"{uri}: file:// outputs vanish with the rendering pod on a "
                           "cluster; use s3://bucket/prefix (file:// is for synthctl generate --local), or ask "
                           "the cluster admin to set up a shared volume (chart value renderer.fileOutput)")]
    root = posixpath.normpath(settings.pods.file_output_path)
    if not _on_volume(uri, root):
        return [FieldError("spec.output.uri", f"{uri}: on this cluster file:// outputs must lie below "
                           f"file://{root} (the shared volume)")]
    return []


def image_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    image = spec.image
    errors = []
    prefixes = settings.policy.allowed_image_prefixes
    if prefixes and not any(image.startswith(p) for p in prefixes):
        errors.append(FieldError("spec.image", f"{image} is not allowed on this cluster; allowed prefixes: "
                                 f"{_listed(prefixes)}"))
    if settings.policy.require_image_digest and "@sha256:" not in image:
        errors.append(FieldError("spec.image", f"{image} must be pinned by digest on this cluster "
                                 "(name@sha256:<64 hex digits>)"))
    return errors


def scheduling_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    errors = []
    keys = settings.policy.allowed_node_selector_keys
    for key in sorted(spec.node_pool.node_selector):
        if keys and key not in keys:
            errors.append(FieldError(f"spec.nodePool.nodeSelector.{key}", f"node label {key} is not allowed on "
                                     f"this cluster; allowed: {_listed(keys)}"))
    allowed = settings.policy.allowed_toleration_keys
    for i, tol in enumerate(spec.node_pool.tolerations):
        key = tol.key or ""
        where = f"spec.nodePool.tolerations[{i}]"
        if not key:
            errors.append(FieldError(where, "a toleration without a key tolerates every taint "
                                     "(control plane included); name the taint key"))
        elif key in allowed:
            continue
        elif allowed:
            errors.append(FieldError(where, f"taint {key} may not be tolerated on this cluster; "
                                     f"allowed: {_listed(allowed)}"))
        elif key in CONTROL_PLANE_TAINTS:
            errors.append(FieldError(where, f"taint {key} keeps workloads off the control plane; "
                                     "rendering pods may not tolerate it"))
    return errors


def template_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    """``spec.podTemplate`` must not reach around the policy: required node affinity uses only the
    allowed node label keys (and never pins a node by field), env reads only the allowed Secrets."""
    template = getattr(spec, "pod_template", None)
    if template is None:
        return []
    errors = []
    keys = settings.policy.allowed_node_selector_keys
    node = template.affinity.node_affinity if template.affinity is not None else None
    required = node.required_during_scheduling_ignored_during_execution if node is not None else None
    if keys and required is not None:
        for t, term in enumerate(required.node_selector_terms):
            where = f"spec.podTemplate.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution" \
                    f".nodeSelectorTerms[{t}]"
            for i, req in enumerate(term.match_expressions):
                if req.key not in keys:
                    errors.append(FieldError(f"{where}.matchExpressions[{i}].key", f"node label {req.key} is not "
                                             f"allowed on this cluster; allowed: {_listed(keys)}"))
            for i, req in enumerate(term.match_fields):
                errors.append(FieldError(f"{where}.matchFields[{i}]", f"pinning nodes by {req.key} is not allowed "
                                         f"on this cluster; select nodes by the labels {_listed(keys)}"))
    allowed = settings.policy.allowed_credentials_secrets
    for i, env in enumerate(template.env):
        ref = env.value_from.secret_key_ref if env.value_from is not None else None
        if ref is not None and allowed and ref.name not in allowed:
            errors.append(FieldError(f"spec.podTemplate.env[{i}].valueFrom.secretKeyRef.name",
                                     f"Secret {ref.name} may not be used by datasets on this cluster; "
                                     f"allowed: {_listed(allowed)}"))
    return errors


def secret_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    name = spec.output.credentials_secret
    allowed = settings.policy.allowed_credentials_secrets
    if name and allowed and name not in allowed:
        return [FieldError("spec.output.credentialsSecret", f"Secret {name} may not be used by datasets on this "
                           f"cluster; allowed: {_listed(allowed)}")]
    return []


def captioner_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    """``module:function`` makes rendering pods import a module the dataset's author chose: admin's opt-in."""
    name = str(spec.render.captioner)
    if ":" not in name or settings.policy.allow_captioner_modules:
        return []
    return [FieldError("spec.render.captioner", f"{name}: module:function captioners are not allowed on this "
                       "cluster; use builtin, none or an entry point registered in group "
                       "parallel_synth.captioners (the admin may allow module paths: policy.allowCaptionerModules)")]


def policy_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    """Every way ``spec`` breaks the admin's policy (empty: the operator may run it)."""
    return [*output_errors(spec, settings), *image_errors(spec, settings),
            *scheduling_errors(spec, settings), *secret_errors(spec, settings), *template_errors(spec, settings),
            *captioner_errors(spec, settings)]


# --------------------------------------------------------------------------- asset URIs
# Asset URIs the operator can judge without I/O: what render pods on a cluster cannot read.
# A ``builtin:`` name the renderer does not ship, or a ``file://`` library, environment or texture
# folder that is not on the shared volume, can never be read by a rendering pod: the operator
# turns them into ``SpecValid=False`` with the field path before any Job exists. (Whether an
# ``s3://`` prefix exists is found by the pods, which exit 2 naming the URI, and by
# ``synthctl generate`` / ``synthctl assets check`` before a local run.) Pure: no I/O.

BUILTINS = ("studiolights", "sample-objects")
"""``builtin:NAME`` sources shipped in the renderer (keep in step with synth_render.assets.fetch.BUILTINS)."""


def asset_uri_errors(spec: SynthDatasetSpec, settings: Settings) -> list[FieldError]:
    errors: list[FieldError] = []
    fields = [(f"spec.assets.libraries[{i}].uri", lib.uri) for i, lib in enumerate(spec.assets.libraries)]
    fields += [(f"spec.assets.environments[{i}].uri", e.uri) for i, e in enumerate(spec.assets.environments)]
    fields += [(f"spec.assets.textures[{i}].uri", t.uri) for i, t in enumerate(spec.assets.textures)]
    for path, uri in fields:
        if uri.startswith("builtin:"):
            name = uri.removeprefix("builtin:")
            if name not in BUILTINS:
                errors.append(FieldError(path, f"{uri}: unknown built-in (allowed: "
                                         + ", ".join(f"builtin:{b}" for b in BUILTINS) + ")"))
        elif uri.startswith("file://"):
            root = posixpath.normpath(settings.pods.file_output_path)
            on_volume = _on_volume(uri, root)
            if not settings.pods.file_output_claim or not on_volume:
                errors.append(FieldError(path, f"{uri}: rendering pods cannot read this folder on a cluster; use "
                                         "s3://bucket/prefix" + (f" or a folder below file://{root}"
                                                                 if settings.pods.file_output_claim else "")))
    return errors
