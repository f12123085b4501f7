#!/usr/bin/env bash
# One entry point for the README's two commands (and CI): `demo` and `test`.
# Works without make; the Makefile's targets call this script.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[[ -n "$PY" ]] || { echo "parallel-synth needs Python 3.11 (bpy wheels exist for 3.11 only)" >&2; exit 2; }

setup() {
  local stamp="$VENV/.setup-$(sha256sum pyproject.toml | cut -c1-16)"
  [[ -f "$stamp" ]] && return 0
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    # Debian ships venv separately.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv "$VENV"
    else
      echo "python venv is missing: sudo apt-get install python3-venv" >&2; exit 2
    fi
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  rm -f "$VENV"/.setup-*; touch "$stamp"
}

BIN="$VENV/bin"
cmd="${1:-help}"; shift || true
case "$cmd" in
  setup) setup ;;
  demo)
    setup
    OUT="${OUT:-./data}"
    "$BIN/synthctl" generate examples/quickstart.yaml --out "$OUT" "$@"
    "$BIN/synthctl" validate "$OUT/quickstart/v1"
    "$BIN/synthctl" preview "$OUT/quickstart/v1" --out "$OUT/quickstart-preview.png"
    echo "Preview: $OUT/quickstart-preview.png"
    ;;
  lint)
    setup
    "$BIN/ruff" check contract operator renderer-image tests benchmarks e2e
    "$BIN/mypy"
    ;;
  test)
    setup
    "$BIN/ruff" check contract operator renderer-image tests benchmarks e2e
    "$BIN/mypy"
    # The real control plane of tests/realcluster (etcd, kube-apiserver, controller-manager,
    # scheduler, kwok, Kueue), built from Go modules on first use (~15 min on 2 cores), then
    # reused from ${PARALLEL_SYNTH_TOOLS:-~/.cache/parallel-synth}. Built here, before pytest,
    # so a build failure is reported as one.
    bash scripts/local-cluster.sh build --kueue
    bash scripts/get-helm.sh >/dev/null
    # Headless Chromium lays out `synthctl report` in tests/local/test_local_report_layout.py.
    if ! command -v chromium >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
        || echo "chromium could not be installed: the report layout test is skipped" >&2
    fi
    # pytest exits 5 when it collects no test: that fails here like any other error.
    "$BIN/python" -m pytest "$@"
    ;;
  crds)
    setup
    "$BIN/synthctl" crds --out crds
    if [[ -d charts/parallel-synth/crds ]]; then cp crds/*.yaml charts/parallel-synth/crds/; fi
    if [[ -d manifests/base/crds ]]; then cp crds/*.yaml manifests/base/crds/; fi
    ;;
  *) echo "usage: scripts/dev.sh {setup|demo|test|lint|crds}" >&2; exit 2 ;;
esac
