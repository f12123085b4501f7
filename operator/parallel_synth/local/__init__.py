"""Local mode: render, index, validate, preview and plan a dataset with no cluster.

``synthctl generate`` runs the same planner as the operator and the same renderer as the
Job's pods, in a pool of worker processes on one machine. The other commands work on any
dataset that follows the data contract, wherever it was rendered (local folder or S3).
"""
