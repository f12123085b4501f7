"""Fixtures of the scaling tests."""

from __future__ import annotations

import pytest
from scaling_helpers import make_spec

from parallel_synth.api import SynthDatasetSpec


@pytest.fixture
def spec() -> SynthDatasetSpec:
    return make_spec()
