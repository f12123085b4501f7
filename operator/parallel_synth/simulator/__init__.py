"""The fleet simulator: the operator's real decisions on a simulated clock and cluster.

``model`` (what a simulation takes and reports), ``clock`` (the event heap), ``objects`` (Jobs and
pods, and the facts the operator observes of them), ``cluster`` (nodes, Kueue, the Job controller and
the renderer's pods), ``control`` (the operator's reconciles: ``decide_batch``,
``decide_dataset`` with the index Job), ``fleet`` (the event loop, days and the report:
:func:`~parallel_synth.simulator.fleet.simulate`) and, apart, ``plot`` (matplotlib, imported only
to draw).
"""
