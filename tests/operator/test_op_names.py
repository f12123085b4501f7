"""Names of what the operator creates: DNS labels for every dataset name the API accepts (issue #22 item 2).

An Indexed Job's pods get the hostname ``{job}-{index}``; the API server refuses the Job (422)
when that is not a DNS label for its last index, so a long dataset name must shorten the Job
name, not only the RenderBatch name.
"""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
from builders import batch_spec, index_job, render_job, spec

from parallel_synth.decisions.dataset import batch_name
from parallel_synth.decisions.jobs import MAX_INDEXED_COMPLETIONS, MAX_JOB_NAME, index_job_name, job_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS_LABEL.match(name))


@pytest.mark.parametrize("length", [1, 40, 50, 54, 55, 56, 57, 58, 60, 62, 63])
@pytest.mark.parametrize("batch_index", [0, 7, 123_456])
@pytest.mark.parametrize("attempt", [1, 12])
def test_every_pod_hostname_of_a_long_dataset_is_a_dns_label(length: int, batch_index: int, attempt: int) -> None:
    dataset = ("d" * (length - 1) + "x")[:length]
    batch = batch_name(dataset, batch_index)
    job = job_name(batch, attempt)
    assert dns_label(batch) and dns_label(job)
    assert dns_label(f"{job}-{MAX_INDEXED_COMPLETIONS - 1}")  # the last pod's hostname
    assert dns_label(f"{index_job_name(dataset)}-0")


def test_names_are_deterministic_and_distinct_after_shortening() -> None:
    a, b = "a" * 62 + "b", "a" * 62 + "c"  # same 57-character prefix: the hash keeps them apart
    assert job_name(batch_name(a, 1), 1) == job_name(batch_name(a, 1), 1)
    assert job_name(batch_name(a, 1), 1) != job_name(batch_name(b, 1), 1)
    assert job_name(batch_name(a, 1), 1) != job_name(batch_name(a, 1), 2)
    assert len(job_name(batch_name(a, 1), 1)) <= MAX_JOB_NAME
    assert job_name("ds-b4", 2) == "ds-b4-a2"  # short names are unchanged (running Jobs keep theirs)


@pytest.mark.parametrize("length", [55, 56, 63])
def test_jobs_of_a_63_character_dataset_validate(length: int) -> None:
    dataset = "n" * length
    batch = batch_name(dataset, 3)
    job = render_job(spec(), batch=batch, bspec=batch_spec(dataset=dataset, shard_count=100, parallelism=4),
                     attempt=2, completions=100, parallelism=4)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    assert dns_label(f"{job['metadata']['name']}-{job['spec']['completions'] - 1}")
    ijob = index_job(spec(), name=dataset)
    assert dns_label(f"{ijob['metadata']['name']}-0")
