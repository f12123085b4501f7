"""Adapters between the Kubernetes API and the pure decisions: observe, decide, apply.

``kube`` is the only module that calls the API; ``reconcile`` observes, calls
:mod:`parallel_synth.decisions` and applies the effects; ``handlers`` is the kopf glue.
"""
