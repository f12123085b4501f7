#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1, built from Go modules (no Docker, no registry).
#
#   bash scripts/local-cluster.sh up DIR [--kueue] [--gpu-nodes N] [--spot-nodes M] [--zones Z]
#   bash scripts/local-cluster.sh down DIR
#   bash scripts/local-cluster.sh build [--kueue]      # build (or reuse) the binaries only
#
# `up` builds on first use (then reuses, keyed by version) etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok and (with --kueue) Kueue's manager; starts them
# on 127.0.0.1 with generated certificates and RBAC authorization on; writes DIR/kubeconfig
# (cluster-admin), DIR/versions.json and DIR/env (ports, paths); creates fake GPU nodes run by
# kwok: N on-demand and M spot (labelled and tainted as GKE labels spot capacity, which the cost
# code bills as spot). It exits 0 only once the API answers and every node is Ready. On any
# failure it names the component, the command and the last lines of its log, and stops what it
# started: never a half-started cluster. All state and logs stay under DIR.
#
# Binaries live outside the repo, under ${PARALLEL_SYNTH_TOOLS:-$HOME/.cache/parallel-synth}.
# The Go modules that pin them are tools/k8s (k8s.io/kubernetes + staging modules) and
# tools/etcd; kwok and Kueue are built with `go install module@version`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# Pinned versions: Kubernetes and etcd by tools/k8s/go.mod and tools/etcd/go.mod (keep these in
# step with them); kwok and Kueue are `go install`ed at these versions (the environment may
# override those two, e.g. to try a newer patch release).
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
TOOLS="${PARALLEL_SYNTH_TOOLS:-$HOME/.cache/parallel-synth}"
K8S_BIN="$TOOLS/k8s-$K8S_VERSION/bin"
ETCD_BIN="$TOOLS/etcd-$ETCD_VERSION/bin"
KWOK_BIN="$TOOLS/kwok-$KWOK_VERSION/bin"
KUEUE_BIN="$TOOLS/kueue-$KUEUE_VERSION/bin"

say() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { printf 'local-cluster: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------------- building

# build_step NAME OUTDIR CMD...: runs CMD (which writes into $OUT) once; a finished build is
# marked by OUTDIR/.done so an interrupted one is redone. A lock keeps parallel callers apart.
build_step() {
  local name="$1" outdir="$2"; shift 2
  [[ -f "$outdir/.done" ]] && return 0
  mkdir -p "$TOOLS"
  exec {lockfd}>"$TOOLS/.build.lock"
  flock "$lockfd"
  if [[ ! -f "$outdir/.done" ]]; then
    local log="$TOOLS/build-$name.log" started=$SECONDS
    say "building $name (first use; cached in $outdir) ..."
    rm -rf "$outdir.tmp"; mkdir -p "$outdir.tmp/bin"
    if ! OUT="$outdir.tmp/bin" "$@" >"$log" 2>&1 || [[ -z "$(ls -A "$outdir.tmp/bin")" ]]; then
      flock -u "$lockfd"
      printf 'local-cluster: building %s failed: %s\n--- last lines of %s ---\n' "$name" "$*" "$log" >&2
      tail -n 25 "$log" >&2
      exit 1
    fi
    rm -rf "$outdir"; mv "$outdir.tmp" "$outdir"; touch "$outdir/.done"
    say "built $name in $((SECONDS - started)) s"
  fi
  flock -u "$lockfd"
}

_go_k8s() {
  local v="$K8S_VERSION" minor; minor="${v#v1.}"; minor="${minor%%.*}"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1"
  ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$v"
  (cd "$ROOT/tools/k8s" && go build -trimpath -ldflags "$ld" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler) || return 1
}
_go_etcd() { (cd "$ROOT/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" .) || return 1; }
_go_kwok() {
  # (called in an `if`, where set -e does not apply: every step checks its own status)
  GOBIN="$OUT" GOFLAGS=-trimpath go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" || return 1
  # kwok needs Stage definitions: its stock stages ship in the module zip.
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  mkdir -p "$OUT/../stage" && cp -r "$src/." "$OUT/../stage/" && chmod -R u+w "$OUT/../stage" || return 1
}
_go_kueue() {
  GOBIN="$OUT" GOFLAGS=-trimpath go install -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
    "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION" || return 1
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kueue@$KUEUE_VERSION/config/components"
  mkdir -p "$OUT/../config" && cp -r "$src/crd" "$src/rbac" "$src/webhook" "$OUT/../config/" \
    && chmod -R u+w "$OUT/../config" || return 1
}

# ensure_go: a Go toolchain >= 1.26 on PATH. Without one (a fresh Debian has none, or an old
# one), the toolchain is fetched once from the Go module proxy (golang.org/toolchain, the very
# zip `go` itself downloads for GOTOOLCHAIN) into $TOOLS/go-$GO_TOOLCHAIN.
GO_TOOLCHAIN="${GO_TOOLCHAIN:-go1.26.8}"
ensure_go() {
  if command -v go >/dev/null; then
    local v; v="$(go env GOVERSION 2>/dev/null || echo go0)"; v="${v#go}"
    local major="${v%%.*}" minor; minor="${v#*.}"; minor="${minor%%.*}"
    if (( major > 1 || (major == 1 && minor >= 26) )); then return 0; fi
  fi
  local dir="$TOOLS/$GO_TOOLCHAIN" proxy="${GOPROXY:-https://proxy.golang.org}"
  proxy="${proxy%%,*}"
  if [[ ! -x "$dir/bin/go" ]]; then
    command -v curl >/dev/null || die "fetching Go needs curl (apt-get install curl)"
    say "fetching $GO_TOOLCHAIN from $proxy (no Go >= 1.26 on PATH) ..."
    local zip; zip="$(mktemp)"
    curl -fsSL "$proxy/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-amd64.zip" -o "$zip" \
      || { rm -f "$zip"; die "could not fetch $GO_TOOLCHAIN from $proxy (golang.org/toolchain)"; }
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    # Python's zipfile keeps no file modes: the toolchain's programs are made executable after.
    python3 -m zipfile -e "$zip" "$dir.tmp" && rm -f "$zip" || die "could not unpack $GO_TOOLCHAIN"
    rm -rf "$dir"; mv "$dir.tmp/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-amd64" "$dir"; rm -rf "$dir.tmp"
    chmod -R a+x "$dir/bin" "$dir/pkg/tool"
  fi
  export PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
}

build_all() {
  local kueue="$1"
  if [[ -f "$TOOLS/etcd-$ETCD_VERSION/.done" && -f "$TOOLS/k8s-$K8S_VERSION/.done" && -f "$TOOLS/kwok-$KWOK_VERSION/.done" \
        && ( "$kueue" == 0 || -f "$TOOLS/kueue-$KUEUE_VERSION/.done" ) ]]; then return 0; fi
  ensure_go
  build_step "etcd-$ETCD_VERSION" "$TOOLS/etcd-$ETCD_VERSION" _go_etcd
  build_step "kubernetes-$K8S_VERSION" "$TOOLS/k8s-$K8S_VERSION" _go_k8s
  build_step "kwok-$KWOK_VERSION" "$TOOLS/kwok-$KWOK_VERSION" _go_kwok
  if [[ "$kueue" == 1 ]]; then build_step "kueue-$KUEUE_VERSION" "$TOOLS/kueue-$KUEUE_VERSION" _go_kueue; fi
}

# --------------------------------------------------------------------------------- helpers

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }

# start NAME CMD...: runs CMD in its own session (so `down` stops its whole process group),
# logs to DIR/logs/NAME.log, records the pid and the command.
start() {
  local name="$1"; shift
  printf '%s\n' "$*" >"$DIR/logs/$name.cmd"
  setsid "$@" >"$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$DIR/pids/$name.pid"
}

# fail NAME MESSAGE: prints what failed with the last lines of its log, stops everything.
fail() {
  local name="$1" msg="$2"
  {
    printf 'local-cluster: %s %s\n' "$name" "$msg"
    [[ -f "$DIR/logs/$name.cmd" ]] && printf 'command: %s\n' "$(cat "$DIR/logs/$name.cmd")"
    if [[ -f "$DIR/logs/$name.log" ]]; then printf -- '--- last lines of %s ---\n' "$DIR/logs/$name.log"; tail -n 20 "$DIR/logs/$name.log"; fi
  } >&2
  stop_all
  exit 1
}

# wait_for NAME SECONDS CMD...: polls CMD until it succeeds; fails NAME when its process died or
# the time ran out.
wait_for() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout)) pid; pid="$(cat "$DIR/pids/$name.pid" 2>/dev/null || echo)"
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then fail "$name" "exited before it became ready"; fi
    (( SECONDS < deadline )) || fail "$name" "did not become ready within ${timeout}s"
    sleep 0.5
  done
}

stop_all() {
  local pidfile pid name order=(kueue kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
  [[ -d "$DIR/pids" ]] || return 0
  for name in "${order[@]}" $(ls "$DIR/pids" 2>/dev/null | sed 's/\.pid$//'); do
    pidfile="$DIR/pids/$name.pid"; [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

kc() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

# crds_established NAME...: every named CRD has condition Established=True.
crds_established() {
  local crd
  for crd in "$@"; do
    [[ "$(kc get crd "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]] || return 1
  done
}

find_kubectl() {
  if [[ -x "$ROOT/.venv/bin/kubectl" ]]; then KUBECTL="$ROOT/.venv/bin/kubectl"
  elif command -v kubectl >/dev/null; then KUBECTL="$(command -v kubectl)"
  else die "kubectl is needed (make setup installs it into .venv)"; fi
  PY="$ROOT/.venv/bin/python"; [[ -x "$PY" ]] || PY=python3
}

# --------------------------------------------------------------------------------- certificates

make_certs() {
  local c="$DIR/pki"; mkdir -p "$c"
  (
    cd "$c"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=parallel-synth-local-ca" 2>/dev/null
    # sign NAME SUBJ [SAN]: a key and a certificate signed by the local CA
    sign() {
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      if [[ -n "${3:-}" ]]; then printf 'subjectAltName=%s\n' "$3" >"$1.ext"; else printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"; fi
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign admin "/O=system:masters/CN=local-admin"
    sign webhook "/CN=localhost" "IP:127.0.0.1,DNS:localhost"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_kubeconfig() {
  local out="$1" server="$2"
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $server
    certificate-authority: $DIR/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $DIR/pki/admin.crt
    client-key: $DIR/pki/admin.key
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
EOF
}

# --------------------------------------------------------------------------------- nodes

node_yaml() {
  # node_yaml NAME POOL SPOT ZONE
  local name="$1" pool="$2" spot="$3" zone="$4" labels taints
  labels="    parallelsynth.io/pool: $pool
    topology.kubernetes.io/zone: $zone
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $name
    type: kwok
    nvidia.com/gpu.present: \"true\"
    node.kubernetes.io/instance-type: g2-standard-8"
  taints="  - {key: nvidia.com/gpu, value: present, effect: NoSchedule}"
  if [[ "$spot" == 1 ]]; then
    labels+="
    cloud.google.com/gke-spot: \"true\""
    taints+="
  - {key: cloud.google.com/gke-spot, value: \"true\", effect: NoSchedule}"
  fi
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
$labels
spec:
  taints:
$taints
status:
  allocatable: {cpu: "8", memory: 64Gi, pods: "110", nvidia.com/gpu: "1", ephemeral-storage: 200Gi}
  capacity: {cpu: "8", memory: 64Gi, pods: "110", nvidia.com/gpu: "1", ephemeral-storage: 200Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
EOF
}

create_nodes() {
  local gpu="$1" spot="$2" zones="$3" i f="$DIR/nodes.yaml"
  : >"$f"
  for ((i = 0; i < gpu; i++)); do node_yaml "gpu-ondemand-$i" gpu-ondemand 0 "zone-$((i % zones))" >>"$f"; done
  for ((i = 0; i < spot; i++)); do node_yaml "gpu-spot-$i" gpu-spot 1 "zone-$((i % zones))" >>"$f"; done
  (( gpu + spot > 0 )) || return 0
  kc apply --server-side -f "$f" >"$DIR/logs/nodes.log" 2>&1 || fail nodes "could not be created (kubectl apply -f $f)"
  local want=$((gpu + spot)) deadline ready
  deadline=$((SECONDS + 120 + want / 10))
  while :; do
    ready="$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True || true)"
    (( ready >= want )) && break
    (( SECONDS < deadline )) || fail kwok "did not make the $want nodes Ready ($ready ready)"
    sleep 1
  done
}

# --------------------------------------------------------------------------------- kueue

start_kueue() {
  local cfgdir="$TOOLS/kueue-$KUEUE_VERSION/config" port health metrics
  port="$(free_port)"; health="$(free_port)"; metrics="$(free_port)"
  mkdir -p "$DIR/kueue/certs"
  cp "$DIR/pki/webhook.crt" "$DIR/kueue/certs/tls.crt"; cp "$DIR/pki/webhook.key" "$DIR/kueue/certs/tls.key"
  cat >"$DIR/kueue/config.yaml" <<EOF
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:$health
metrics:
  bindAddress: 127.0.0.1:$metrics
webhook:
  port: $port
  host: 127.0.0.1
  certDir: $DIR/kueue/certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
manageJobsWithoutQueueName: false
integrations:
  frameworks: ["batch/job"]
featureGates:
  VisibilityOnDemand: false
EOF
  kc create namespace kueue-system >/dev/null 2>&1 || true
  # CRDs and webhooks pointed at the manager on loopback, with our CA.
  local ca; ca="$(base64 -w0 <"$DIR/pki/ca.crt")"
  kc kustomize "$cfgdir/crd" 2>/dev/null | "$PY" "$ROOT/scripts/kueue_webhooks.py" "https://127.0.0.1:$port" "$ca" >"$DIR/kueue/crds.yaml" \
    || fail kueue-crds "could not be rewritten for loopback"
  kc apply --server-side -f "$DIR/kueue/crds.yaml" >"$DIR/logs/kueue-crds.log" 2>&1 || fail kueue-crds "CRDs were refused (kubectl apply -f $DIR/kueue/crds.yaml)"
  wait_for kueue-crds 60 crds_established workloads.kueue.x-k8s.io clusterqueues.kueue.x-k8s.io \
    localqueues.kueue.x-k8s.io resourceflavors.kueue.x-k8s.io
  kc kustomize "$cfgdir/webhook" 2>/dev/null | "$PY" "$ROOT/scripts/kueue_webhooks.py" "https://127.0.0.1:$port" "$ca" >"$DIR/kueue/webhooks.yaml" \
    || fail kueue-webhooks "could not be rewritten for loopback"
  # Kueue reads its metrics certificate from a fixed path (/etc/kueue/metrics/certs) when it
  # does not manage certificates itself: give it ours there through a private mount namespace,
  # so nothing is written outside DIR (only the empty mount point is created once).
  mkdir -p "$DIR/kueue/metrics-certs"; cp "$DIR/kueue/certs/tls."* "$DIR/kueue/metrics-certs/"
  mkdir -p /etc/kueue/metrics/certs 2>/dev/null || fail kueue "needs the mount point /etc/kueue/metrics/certs (run as root, or create it once)"
  command -v unshare >/dev/null || fail kueue "needs unshare (util-linux) to mount its metrics certificate"
  start kueue unshare -m --propagation private sh -c 'mount --bind "$0" /etc/kueue/metrics/certs && exec "$@"' \
    "$DIR/kueue/metrics-certs" "$KUEUE_BIN/kueue" --config "$DIR/kueue/config.yaml" --kubeconfig "$DIR/kubeconfig" --zap-log-level=2
  wait_for kueue 120 curl -sf "http://127.0.0.1:$health/readyz"
  kc apply --server-side -f "$DIR/kueue/webhooks.yaml" >"$DIR/logs/kueue-webhooks.log" 2>&1 || fail kueue "webhook configurations were refused"
  printf 'KUEUE_WEBHOOK_PORT=%s\nKUEUE_METRICS_PORT=%s\n' "$port" "$metrics" >>"$DIR/env"
}

# --------------------------------------------------------------------------------- up / down

up() {
  local kueue=0 gpu=2 spot=2 zones=2
  while (($#)); do
    case "$1" in
      --kueue) kueue=1 ;;
      --gpu-nodes) gpu="${2:?--gpu-nodes needs a number}"; shift ;;
      --spot-nodes) spot="${2:?--spot-nodes needs a number}"; shift ;;
      --zones) zones="${2:?--zones needs a number}"; shift ;;
      --max-requests-inflight) INFLIGHT="${2:?}"; shift ;;
      --kwok-stages) KWOK_STAGES="${KWOK_STAGES:-} ${2:?--kwok-stages needs a file}"; shift ;;
      *) die "up: unknown option '$1' (allowed: --kueue --gpu-nodes N --spot-nodes M --zones Z --max-requests-inflight N)" ;;
    esac; shift
  done
  [[ "$gpu$spot$zones" =~ ^[0-9]+$ ]] && (( zones > 0 )) || die "up: --gpu-nodes/--spot-nodes must be whole numbers, --zones > 0"
  command -v openssl >/dev/null || die "openssl is needed to make the cluster's certificates"
  find_kubectl
  build_all "$kueue"
  if [[ -f "$DIR/pids/kube-apiserver.pid" ]] && kill -0 "$(cat "$DIR/pids/kube-apiserver.pid")" 2>/dev/null; then
    die "a cluster is already running in $DIR (bash scripts/local-cluster.sh down $DIR)"
  fi
  rm -rf "$DIR/etcd" "$DIR/pids" "$DIR/logs" "$DIR/pki" "$DIR/kueue"; mkdir -p "$DIR/pids" "$DIR/logs"
  # Any failure from here on stops what was started: never a half-started cluster.
  trap 'rc=$?; if (( rc != 0 )); then stop_all; fi' EXIT
  trap 'exit 130' INT TERM
  make_certs

  local etcd_client etcd_peer api cm sched kwok_port
  etcd_client="${ETCD_PORT:-$(free_port)}"; etcd_peer="$(free_port)"
  api="${APISERVER_PORT:-$(free_port)}"; cm="$(free_port)"; sched="$(free_port)"; kwok_port="$(free_port)"
  port_free "$etcd_client" || fail etcd "cannot start: port $etcd_client on 127.0.0.1 is in use (ETCD_PORT)"
  port_free "$api" || fail kube-apiserver "cannot start: port $api on 127.0.0.1 is in use (APISERVER_PORT)"

  start etcd "$ETCD_BIN/etcd" --name local --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "local=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "http://127.0.0.1:$(free_port)" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
  wait_for etcd 60 curl -sf "http://127.0.0.1:$etcd_client/health"

  local pki="$DIR/pki"
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$api" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode RBAC --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.0.0.0/24 --profiling=false --enable-priority-and-fairness=false \
    --max-requests-inflight "${INFLIGHT:-400}" --max-mutating-requests-inflight "$(( ${INFLIGHT:-400} / 2 ))" \
    --event-ttl 30m --v 1 ${APISERVER_EXTRA_ARGS:-}
  write_kubeconfig "$DIR/kubeconfig" "https://127.0.0.1:$api"
  wait_for kube-apiserver 120 curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$api/readyz"

  start kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig "$DIR/kubeconfig" \
    --authentication-kubeconfig "$DIR/kubeconfig" --authorization-kubeconfig "$DIR/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cm" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" --controllers '*' \
    --node-monitor-period 2s --node-monitor-grace-period 20s \
    --terminated-pod-gc-threshold 100000 --concurrent-job-syncs 10 --kube-api-qps 200 --kube-api-burst 400 --v 1
  start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$DIR/kubeconfig" \
    --authentication-kubeconfig "$DIR/kubeconfig" --authorization-kubeconfig "$DIR/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched" --leader-elect=false --kube-api-qps 200 --kube-api-burst 400 --v 1
  wait_for kube-controller-manager 60 curl -sfk "https://127.0.0.1:$cm/healthz"
  wait_for kube-scheduler 60 curl -sfk "https://127.0.0.1:$sched/healthz"
  # The controllers wait for the default namespace's ServiceAccount before pods can be made.
  wait_for kube-controller-manager 60 kc get serviceaccount default -n default

  # kwok's stock stages: nodes become Ready and keep a lease; pods on them become Running and
  # go away when deleted. They never complete on their own unless --kwok-stages adds a stage
  # that does (benchmarks/bench_fleet.py completes pods after a seeded duration).
  local stages="$DIR/kwok-stages.yaml" st="$TOOLS/kwok-$KWOK_VERSION/stage" f
  : >"$stages"
  for f in "$st/node/fast/node-initialize.yaml" "$st/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
           "$st/pod/fast/pod-ready.yaml" "$st/pod/fast/pod-delete.yaml" ${KWOK_STAGES:-}; do
    [[ -f "$f" ]] || fail kwok "stage file $f is missing"
    { echo "---"; grep -v '^#' "$f"; } >>"$stages"
  done
  start kwok "$KWOK_BIN/kwok" --kubeconfig "$DIR/kubeconfig" --config "$stages" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --disregard-status-with-annotation-selector kwok.x-k8s.io/status=custom \
    --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$kwok_port"
  wait_for kwok 60 curl -sf "http://127.0.0.1:$kwok_port/healthz"

  cat >"$DIR/env" <<EOF
KUBECONFIG=$DIR/kubeconfig
APISERVER_URL=https://127.0.0.1:$api
ETCD_URL=http://127.0.0.1:$etcd_client
K8S_BIN=$K8S_BIN
EOF
  create_nodes "$gpu" "$spot" "$zones"
  if [[ "$kueue" == 1 ]]; then start_kueue; fi
  cat >"$DIR/versions.json" <<EOF
{"kubernetes": "$K8S_VERSION", "etcd": "$ETCD_VERSION", "kwok": "$KWOK_VERSION", "kueue": $([[ "$kueue" == 1 ]] && echo "\"$KUEUE_VERSION\"" || echo null)}
EOF
  trap - EXIT INT TERM
  say "ready: export KUBECONFIG=$DIR/kubeconfig ($gpu on-demand + $spot spot GPU nodes$([[ "$kueue" == 1 ]] && echo ', Kueue'))"
}

down() {
  [[ -d "$DIR" ]] || return 0
  stop_all
  say "stopped the cluster in $DIR"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up|down)
    [[ -n "${1:-}" ]] || die "usage: local-cluster.sh $cmd DIR"
    mkdir -p "$1"; DIR="$(cd "$1" && pwd)"; shift
    "$cmd" "$@" ;;
  build)
    k=0; [[ "${1:-}" == --kueue ]] && k=1
    build_all "$k" ;;
  *) die "usage: local-cluster.sh {up DIR [--kueue] [--gpu-nodes N] [--spot-nodes M] [--zones Z] | down DIR | build [--kueue]}" ;;
esac
