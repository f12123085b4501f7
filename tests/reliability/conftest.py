"""Fixtures of the reliability suite: the harness lives in ``box/`` next to this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
