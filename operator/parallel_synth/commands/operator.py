"""``synthctl operator``: run the operator (kopf) with JSON logs, liveness and metrics.

Without ``--standalone`` several replicas may run: kopf peering keeps one active (the others
wait), so a Deployment with 2 replicas survives a node loss without double reconciliation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Mapping

import click

PRIORITY_RANGE = 1_000_000_000
"""Derived peering priorities fall in ``1..PRIORITY_RANGE``: two replicas collide with odds ~1e-9."""


def peering_priority(option: str, env: Mapping[str, str] | None = None) -> int:
    """The kopf peering priority of this replica.

    kopf pauses *every* operator when two peers announce the same priority, so replicas of one
    Deployment must not share the default. ``auto`` derives a stable priority from the pod's
    name (``POD_ID``, set by the chart through the downward API; else the host name, which is
    the pod name in a pod); an integer is taken as is.
    """
    if option.strip().lower() != "auto":
        try:
            return int(option)
        except ValueError:
            raise click.BadParameter(f"{option!r}: use an integer or 'auto'", param_hint="--priority") from None
    env = os.environ if env is None else env
    ident = env.get("POD_ID") or env.get("HOSTNAME") or socket.gethostname()
    digest = hashlib.sha256(ident.encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % PRIORITY_RANGE


@click.command("operator")
@click.option("--standalone", is_flag=True, help="No peering: run even if other replicas exist.")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve this namespace (repeatable; globs ok).")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve all namespaces.")
@click.option("--liveness", "liveness", default=None, metavar="URL",
              help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
@click.option("--peering", "peering_name", default="parallel-synth", show_default=True,
              help="Peering object name (replicas with the same name elect one active).")
@click.option("--priority", "priority_option", default="auto", show_default=True,
              help="Peering priority of this replica: an integer, or 'auto' (derived from the pod name, "
                   "so replicas never tie: kopf pauses all peers on a tie).")
@click.option("--verbose", is_flag=True, help="Info-level logs.")
@click.option("--debug", is_flag=True, help="Debug-level logs.")
@click.option("--log-format", type=click.Choice(["json", "plain", "full"]), default="json", show_default=True)
def operator(
    standalone: bool,
    namespaces: tuple[str, ...],
    clusterwide: bool,
    liveness: str | None,
    metrics_port: int | None,
    peering_name: str,
    priority_option: str,
    verbose: bool,
    debug: bool,
    log_format: str,
) -> None:
    """Run the parallel-synth operator."""
    if not namespaces and not clusterwide:
        raise click.UsageError("choose -n NAMESPACE (repeatable) or -A/--all-namespaces")
    priority = peering_priority(priority_option)
    import kopf

    from parallel_synth.cluster import handlers  # registers the handlers
    formats = {"json": kopf.LogFormat.JSON, "plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL}
    kopf.configure(debug=debug, verbose=verbose, log_format=formats[log_format], log_refkey="object")
    memo = None
    if metrics_port is not None:  # one explicit registry: our metrics only, handed to the handlers
        from prometheus_client import CollectorRegistry

        from parallel_synth.cluster.metrics import Metrics, serve

        registry = CollectorRegistry()
        memo = kopf.Memo(metrics=Metrics(registry))
        serve(registry, port=metrics_port)
    logging.getLogger(__name__).info("settings: %s; peering priority %d", handlers.SETTINGS, priority)
    kopf.run(
        standalone=standalone,
        namespaces=list(namespaces),
        clusterwide=clusterwide,
        liveness_endpoint=liveness,
        # A peering name makes kopf require peering even with standalone=True: pass it only
        # when peering is wanted.
        peering_name=None if standalone else peering_name,
        priority=priority,
        memo=memo,
    )
