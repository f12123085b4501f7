"""The worker's exit codes: what the renderer exits with and what the operator's Jobs act on.

One table for both sides (DESIGN "Exit codes"): the renderer exits with these, the Job's pod
failure policy (``parallel_synth.decisions.jobs``) and the batch decision read them.

* 0: the shard is committed (or was already: its manifest is the commit marker).
* 1: an unexpected error: the Job retries the shard (``backoffLimitPerIndex``).
* 2: bad configuration (spec, assets, credentials): retrying cannot help, the Job fails at once.
* 3: the quality gate failed the shard: failed for good (``FailIndex``), never re-rendered in a
  later attempt either, where the same seeds would fail the same way.
* 143: SIGTERM (preemption, eviction, scale-down): the shard checkpointed; not a failure.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_CONFIG = 2
EXIT_QUALITY_GATE = 3
EXIT_SIGTERM = 143
