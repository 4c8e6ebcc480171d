#!/usr/bin/env bash
# Starts (or reuses) the dev cluster on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, the KWOK controller with simulated GPU nodes, and Prometheus.
# State lives in .cluster/ (git-ignored); the kubeconfig is .cluster/kubeconfig.
# Idempotent: healthy components are reused, stale or dead ones restarted.
# Needs: hack/cluster/deps.sh (prometheus, openssl, curl) and hack/cluster/build.sh (binaries).
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS

# ---- prerequisites ------------------------------------------------------------------------------
for tool in openssl curl ss; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run: bash hack/cluster/deps.sh"
done
[[ -x "$PROMETHEUS_BIN" ]] || die "prometheus not found at $PROMETHEUS_BIN; run: bash hack/cluster/deps.sh"
for dir in "$ETCD_DIR" "$K8S_DIR" "$KWOK_DIR" "$GATEWAY_API_DIR" "$INFERENCE_EXTENSION_DIR"; do
  [[ -f "$dir/.complete" ]] || die "$(basename "$dir") is not built (or its build was interrupted); run: bash hack/cluster/build.sh"
done

mkdir -p "$STATE" "$PKI" "$PIDS" "$LOGS" "$STATE/etcd" "$STATE/prometheus/targets" "$STATE/prometheus/data"

# Serialise concurrent up.sh runs (e.g. two pytest sessions) on the same state dir.
exec 8>"$STATE/.up.lock"
flock 8

# ---- certificates -------------------------------------------------------------------------------
make_pki() {
  [[ -f "$PKI/.complete" ]] && return 0
  log "generating certificates in $PKI"
  rm -f "$PKI"/*
  local ossl=(openssl)
  "${ossl[@]}" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=llmops-dev-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  cat >"$PKI/apiserver.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  cat >"$PKI/client.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
  "${ossl[@]}" req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
  "${ossl[@]}" x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
  "${ossl[@]}" req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=system:masters/CN=admin" \
    -keyout "$PKI/admin.key" -out "$PKI/admin.csr" 2>/dev/null
  "${ossl[@]}" x509 -req -in "$PKI/admin.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/client.ext" -out "$PKI/admin.crt" 2>/dev/null
  # Service-account token signing pair (RS256, what every client library expects).
  "${ossl[@]}" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  "${ossl[@]}" pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI"/*.key
  touch "$PKI/.complete"
}

write_kubeconfig() {
  local tmp=$KUBECONFIG_PATH.tmp
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: llmops-dev
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: llmops-dev
  context:
    cluster: llmops-dev
    user: admin
    namespace: default
current-context: llmops-dev
EOF
  mv "$tmp" "$KUBECONFIG_PATH"
}

# ---- health checks ------------------------------------------------------------------------------
healthy() {
  local name=$1 port=${PORT[$1]}
  case $name in
    etcd) curl -fsS --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null | grep -q '"health":"true"' ;;
    kube-apiserver)
      [[ "$(curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$port/readyz" 2>/dev/null)" == ok ]]
      ;;
    kube-controller-manager | kube-scheduler)
      [[ "$(curl -fsSk --max-time 2 "https://127.0.0.1:$port/healthz" 2>/dev/null)" == ok ]]
      ;;
    kwok) [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null)" == ok* ]] ;;
    prometheus) curl -fsS --max-time 2 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 ;;
  esac
}

wait_healthy() {  # wait_healthy <name> <seconds>
  local name=$1 limit=$2 start=$SECONDS pid
  until healthy "$name"; do
    pid=$(pidfile_pid "$name")
    if [[ -z "$pid" || ! -d /proc/$pid ]]; then
      tail -n 15 "$LOGS/$name.log" >&2 || true
      die "$name exited during startup; see $LOGS/$name.log (last lines above)"
    fi
    if ((SECONDS - start > limit)); then
      tail -n 15 "$LOGS/$name.log" >&2 || true
      die "$name not healthy after ${limit}s on 127.0.0.1:${PORT[$name]}; see $LOGS/$name.log"
    fi
    sleep 0.2
  done
}

# ---- component command lines --------------------------------------------------------------------
# An API server outage stops KWOK's node heartbeats too. With the default grace period (50s) the
# controller-manager then marks every node NotReady and every pod Ready=False, and KWOK never sets
# a running pod Ready again: the dev cluster would not survive an outage a real one survives
# (kubelets keep their pods Ready). Simulated nodes do not die, so give them a long grace period.
KCM_NODE_FLAGS=(--node-monitor-grace-period="${LLMOPS_NODE_GRACE_PERIOD:-10m}" --node-monitor-period=5s)
# Events expire after the API server's --event-ttl (Kubernetes' default: 1h). LLMOPS_EVENT_TTL
# (e.g. 5m) sets it shorter, so a soak shorter than an hour sees Events level off (bench/soak.py).
APISERVER_EVENT_FLAGS=()
[[ -z "${LLMOPS_EVENT_TTL:-}" ]] || APISERVER_EVENT_FLAGS=(--event-ttl="$LLMOPS_EVENT_TTL")
# LLMOPS_PROFILING=true serves Go's pprof at /debug/pprof on the control plane's components (off
# by default, as in production), so a bench can tell where the API server's CPU goes.
PROFILING="--profiling=${LLMOPS_PROFILING:-false}"
args_for() {
  local name=$1
  case $name in
    etcd)
      ARGS=(--name=llmops-dev --data-dir="$STATE/etcd"
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster="llmops-dev=http://127.0.0.1:$ETCD_PEER_PORT"
        --auto-compaction-retention=1 --quota-backend-bytes=8589934592
        --unsafe-no-fsync=true --log-level=warn)
      ;;
    kube-apiserver)
      ARGS=(--bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1
        --etcd-servers="http://127.0.0.1:$ETCD_PORT"
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"
        --client-ca-file="$PKI/ca.crt"
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
        --service-account-issuer=https://kubernetes.default.svc.cluster.local
        --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true
        --max-requests-inflight=1000 --max-mutating-requests-inflight=500
        --endpoint-reconciler-type=none "$PROFILING" --v=1 "${APISERVER_EVENT_FLAGS[@]}")
      ;;
    kube-controller-manager)
      ARGS=(--kubeconfig="$KUBECONFIG_PATH" --bind-address=127.0.0.1 --secure-port="$KCM_PORT"
        --cert-dir="$STATE/pki/kcm" --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics
        --authentication-skip-lookup=true
        --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key"
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key"
        --leader-elect=false --kube-api-qps=500 --kube-api-burst=1000 --concurrent-deployment-syncs=20
        --concurrent-replicaset-syncs=20 --concurrent-gc-syncs=40 "$PROFILING" --v=1
        "${KCM_NODE_FLAGS[@]}")
      ;;
    kube-scheduler)
      ARGS=(--kubeconfig="$KUBECONFIG_PATH" --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT"
        --cert-dir="$STATE/pki/scheduler" --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics
        --authentication-skip-lookup=true
        --leader-elect=false --kube-api-qps=500 --kube-api-burst=1000 "$PROFILING" --v=1)
      ;;
    kwok)
      # Our options next to KWOK's default stages; more parallel stage workers make 1000 pods
      # turn Running sooner than the default of 4.
      cat >"$STATE/kwok.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: ${LLMOPS_KWOK_PARALLELISM:-16}
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
EOF
      ARGS=(--kubeconfig="$KUBECONFIG_PATH" --config="$KWOK_DIR/stages.yaml" --config="$STATE/kwok.yaml"
        --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
        --node-ip=10.0.0.1 --node-name=kwok-controller --node-port="$KWOK_PORT"
        --server-address="127.0.0.1:$KWOK_PORT" --node-lease-duration-seconds=40 --cidr=10.0.0.1/16)
      ;;
    prometheus)
      ARGS=(--config.file="$STATE/prometheus/prometheus.yml" --storage.tsdb.path="$STATE/prometheus/data"
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle
        --storage.tsdb.retention.time=1d --log.level=warn)
      ;;
  esac
}

# ensure_running <name> <startup seconds> [hook]: reuse a healthy process of ours, restart a stale
# one (running hook first, if given), refuse to touch a port someone else holds.
STARTED=()
ensure_running() {
  local name=$1 limit=$2 hook=${3:-} port=${PORT[$1]} pid owner
  pid=$(pidfile_pid "$name")
  args_for "$name"
  # Reused only when it runs with the arguments this script gives it now (a new flag restarts it).
  if is_ours "$pid" "$name" && healthy "$name" &&
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == "${BIN[$name]} ${ARGS[*]} " ]]; then
    return 0
  fi
  # Anything of ours for this component (stale pidfile, lost pidfile, unhealthy, old flags): restart it.
  stop_component "$name"
  if port_in_use "$port"; then
    owner=$(port_owner "$port")
    die "port 127.0.0.1:$port for $name is in use by ${owner:-another process} (not ours); stop it or pick another port: ${PORT_ENV[$name]}=<port> make dev-cluster"
  fi
  [[ -z "$hook" ]] || "$hook"
  log "starting $name on 127.0.0.1:$port"
  # setsid: our processes outlive this shell and miss its Ctrl-C; 8>&- keeps the up.sh lock out of them.
  setsid "${BIN[$name]}" "${ARGS[@]}" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$PIDS/$name.pid"
  STARTED+=("$name")
  wait_healthy "$name" "$limit"
}

write_prometheus_config() {
  local cfg=$STATE/prometheus/prometheus.yml
  cat >"$cfg.tmp" <<EOF
# Written by hack/cluster/up.sh. Add scrape targets by dropping a file into targets/:
#   [{"targets": ["127.0.0.1:PORT"], "labels": {"job": "my-job"}}]
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROMETHEUS_PORT"]
  - job_name: file-targets
    honor_labels: true
    file_sd_configs:
      - files: ["$STATE/prometheus/targets/*.json"]
        refresh_interval: 1s
EOF
  if [[ -f "$cfg" ]] && cmp -s "$cfg" "$cfg.tmp"; then
    rm -f "$cfg.tmp"
  else
    mv "$cfg.tmp" "$cfg"
    local pid
    pid=$(pidfile_pid prometheus)
    if is_ours "$pid" prometheus; then
      curl -fsS -X POST "http://127.0.0.1:$PROMETHEUS_PORT/-/reload" >/dev/null 2>&1 || true
    fi
  fi
}

# ---- nodes --------------------------------------------------------------------------------------
node_yaml() {  # node_yaml <name> <product> <gpus> <memMiB> <family>   (product "" = CPU-only)
  local name=$1 product=$2 gpus=$3 mem=$4 family=$5
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
    type: kwok
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/agent: ""
EOF
  if [[ -n "$product" ]]; then
    cat <<EOF
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: $product
    nvidia.com/gpu.count: "$gpus"
    nvidia.com/gpu.memory: "$mem"
    nvidia.com/gpu.family: $family
spec:
  taints:
  - key: nvidia.com/gpu
    value: present
    effect: NoSchedule
status:
  capacity: {cpu: "64", memory: 512Gi, pods: "250", ephemeral-storage: 2Ti, nvidia.com/gpu: "$gpus"}
  allocatable: {cpu: "64", memory: 512Gi, pods: "250", ephemeral-storage: 2Ti, nvidia.com/gpu: "$gpus"}
EOF
  else
    cat <<EOF
spec: {}
status:
  capacity: {cpu: "64", memory: 512Gi, pods: "250", ephemeral-storage: 2Ti}
  allocatable: {cpu: "64", memory: 512Gi, pods: "250", ephemeral-storage: 2Ti}
EOF
  fi
}

NODES=(kwok-h100-0 kwok-h100-1 kwok-a100-0 kwok-a100-1 kwok-l4-0 kwok-l4-1 kwok-cpu-0)
create_nodes() {
  local existing
  existing=$("$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get nodes -l type=kwok -o name 2>/dev/null | wc -l)
  if ((existing >= ${#NODES[@]})); then
    return 0
  fi
  log "creating simulated nodes"
  {
    node_yaml kwok-h100-0 NVIDIA-H100-80GB-HBM3 8 81559 hopper
    node_yaml kwok-h100-1 NVIDIA-H100-80GB-HBM3 8 81559 hopper
    node_yaml kwok-a100-0 NVIDIA-A100-SXM4-80GB 8 81920 ampere
    node_yaml kwok-a100-1 NVIDIA-A100-SXM4-80GB 8 81920 ampere
    node_yaml kwok-l4-0 NVIDIA-L4 4 23034 ada-lovelace
    node_yaml kwok-l4-1 NVIDIA-L4 4 23034 ada-lovelace
    node_yaml kwok-cpu-0 "" 0 0 ""
  } >"$STATE/nodes.yaml"
  # create, not apply: status (capacity) is only taken from the object on create.
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" create -f "$STATE/nodes.yaml" 2>&1 |
    grep -v AlreadyExists >&2 || true
}

# A restarted kwok cannot take over node leases still held by its previous process, and it skips
# pods on nodes whose lease it does not hold (they would stay Pending). The leases are ours: drop
# them before kwok starts so it creates fresh ones at once.
release_node_leases() {
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" -n kube-node-lease delete lease --ignore-not-found \
    "${NODES[@]}" >/dev/null 2>&1 || true
}

wait_node_leases() {
  local i held
  for i in $(seq 1 150); do
    held=$("$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" -n kube-node-lease get lease "${NODES[@]}" \
      -o name 2>/dev/null | wc -l)
    ((held == ${#NODES[@]})) && return 0
    sleep 0.2
  done
  die "kwok did not take the node leases within 30s; see $LOGS/kwok.log"
}

# install_crds <what> <probe crd> <annotation group> <version> <dir>: apply the CRDs in <dir>
# unless <probe crd> already carries bundle-version <version>, then wait until all are Established.
install_crds() {
  local what=$1 probe=$2 group=$3 version=$4 dir=$5
  if "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get crd "$probe" \
    -o jsonpath="{.metadata.annotations.${group//./\\.}/bundle-version}" 2>/dev/null |
    grep -qx "$version"; then
    return 0
  fi
  log "installing $what $version CRDs"
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" apply --server-side --force-conflicts -f "$dir/crds/" >/dev/null
  local crds
  crds=$("$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get crd -o name | grep "\.${group//./\\.}\$")
  # shellcheck disable=SC2086
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" wait --for=condition=Established --timeout=60s $crds >/dev/null
}

# ---- main ---------------------------------------------------------------------------------------
make_pki
write_kubeconfig
write_prometheus_config
ensure_running etcd 30
ensure_running kube-apiserver 90
ensure_running kube-controller-manager 60
ensure_running kube-scheduler 60
create_nodes
ensure_running kwok 30 release_node_leases
wait_node_leases
ensure_running prometheus 60
install_crds "Gateway API" httproutes.gateway.networking.k8s.io gateway.networking.k8s.io \
  "$GATEWAY_API_VERSION" "$GATEWAY_API_DIR"
install_crds InferencePool inferencepools.inference.networking.k8s.io inference.networking.k8s.io \
  "$INFERENCE_EXTENSION_VERSION" "$INFERENCE_EXTENSION_DIR"

# Nodes Ready (KWOK runs their lifecycle) and the default ServiceAccount exists (pods need it).
"$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null ||
  die "simulated nodes not Ready after 60s; see $LOGS/kwok.log"
for i in $(seq 1 100); do
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" -n default get serviceaccount default >/dev/null 2>&1 && break
  ((i == 100)) && die "default ServiceAccount never appeared; see $LOGS/kube-controller-manager.log"
  sleep 0.2
done

if ((${#STARTED[@]})); then
  started="started: ${STARTED[*]}"
else
  started="all components already running"
fi
cat >&2 <<EOF
dev-cluster: ready in $((SECONDS - T0))s ($started)
  kubeconfig  $KUBECONFIG_PATH   (export KUBECONFIG=$KUBECONFIG_PATH)
  apiserver   https://127.0.0.1:$APISERVER_PORT   (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)
  prometheus  http://127.0.0.1:$PROMETHEUS_PORT   (targets: $STATE/prometheus/targets/*.json)
  nodes       ${#NODES[@]} simulated: 2x H100, 2x A100, 2x L4 (nvidia.com/gpu), 1x CPU-only
  logs        $LOGS/
EOF
