"""Local execution: render a dataset on this machine with no cluster.

``synthctl generate`` runs the same planner as the operator and the same renderer as the Job's
pods, in a pool of worker processes (generate, pool, progress, lock); ``synthctl plan`` sizes a
run (capacity, capacity_view). Reading and checking a finished dataset is ``parallel_synth.dataset``.
"""
