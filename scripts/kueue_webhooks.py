"""Rewrite Kueue's webhook configurations and CRDs (kustomize output on stdin) for a manager on loopback.

Kueue in a cluster is reached through its Service; the local control plane runs the manager as
a process on 127.0.0.1, so each webhook gets ``clientConfig.url`` (the manager's address and the
webhook's path) and ``caBundle`` (the local CA); so does each CRD's conversion webhook. Only the webhooks of Kueue's own API and of
``batch/v1`` Jobs are kept: the integrations we do not enable are not served.

    kubectl kustomize CONFIG/webhook | python scripts/kueue_webhooks.py https://127.0.0.1:PORT CA_B64
"""

from __future__ import annotations

import sys

import yaml

KEEP = ("kueue-x-k8s-io", "batch-v1-job")


def rewrite(docs: list[dict], base: str, ca: str) -> list[dict]:
    out = []
    for doc in docs:
        if doc and doc.get("kind") == "CustomResourceDefinition":
            conv = doc.get("spec", {}).get("conversion", {})
            service = conv.get("webhook", {}).get("clientConfig", {}).get("service")
            if service:
                conv["webhook"]["clientConfig"] = {"url": base + service.get("path", "/convert"), "caBundle": ca}
            out.append(doc)
            continue
        if not doc or doc.get("kind") not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            continue
        hooks = []
        for hook in doc.get("webhooks", []):
            path = hook.get("clientConfig", {}).get("service", {}).get("path", "")
            if not any(k in path for k in KEEP):
                continue
            hook["clientConfig"] = {"url": base + path, "caBundle": ca}
            hooks.append(hook)
        doc["metadata"] = {"name": "kueue-" + doc["metadata"]["name"]}
        doc["webhooks"] = hooks
        out.append(doc)
    return out


if __name__ == "__main__":
    base, ca = sys.argv[1], sys.argv[2]
    docs = rewrite(list(yaml.safe_load_all(sys.stdin)), base, ca)
    if not docs or not any(d.get("webhooks") or d["kind"] == "CustomResourceDefinition" for d in docs):
        sys.exit("kueue_webhooks: no webhook configuration found on stdin")
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
