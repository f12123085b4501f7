"""Pure decisions of the operator: typed observations in, typed status and ordered effects out.

Nothing here talks to the Kubernetes API, reads the clock or the environment; ``cluster/``
observes, calls these functions and applies what they return.
"""
