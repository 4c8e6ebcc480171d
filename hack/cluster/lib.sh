# Sourced by up.sh and down.sh: paths, ports and process helpers shared by both.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=hack/cluster/versions.sh
source "$ROOT/hack/cluster/versions.sh"

STATE=${LLMOPS_CLUSTER_DIR:-$ROOT/.cluster}
PKI=$STATE/pki
PIDS=$STATE/pids
LOGS=$STATE/logs
KUBECONFIG_PATH=$STATE/kubeconfig

# Defaults chosen away from the usual 2379/6443/9090 so a real cluster on the host does not clash.
ETCD_PORT=${LLMOPS_ETCD_PORT:-12379}
ETCD_PEER_PORT=${LLMOPS_ETCD_PEER_PORT:-12380}
APISERVER_PORT=${LLMOPS_APISERVER_PORT:-16443}
KCM_PORT=${LLMOPS_KCM_PORT:-16257}
SCHEDULER_PORT=${LLMOPS_SCHEDULER_PORT:-16259}
KWOK_PORT=${LLMOPS_KWOK_PORT:-16247}
PROMETHEUS_PORT=${LLMOPS_PROMETHEUS_PORT:-19090}

PROMETHEUS_BIN=${LLMOPS_PROMETHEUS_BIN:-/usr/bin/prometheus}
KUBECTL=$K8S_DIR/bin/kubectl

# name -> binary; the order is the start order (down.sh stops in reverse).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus)
declare -A BIN=(
  [etcd]=$ETCD_DIR/bin/etcd
  [kube-apiserver]=$K8S_DIR/bin/kube-apiserver
  [kube-controller-manager]=$K8S_DIR/bin/kube-controller-manager
  [kube-scheduler]=$K8S_DIR/bin/kube-scheduler
  [kwok]=$KWOK_DIR/bin/kwok
  [prometheus]=$PROMETHEUS_BIN
)
declare -A PORT=(
  [etcd]=$ETCD_PORT
  [kube-apiserver]=$APISERVER_PORT
  [kube-controller-manager]=$KCM_PORT
  [kube-scheduler]=$SCHEDULER_PORT
  [kwok]=$KWOK_PORT
  [prometheus]=$PROMETHEUS_PORT
)
declare -A PORT_ENV=(
  [etcd]=LLMOPS_ETCD_PORT
  [kube-apiserver]=LLMOPS_APISERVER_PORT
  [kube-controller-manager]=LLMOPS_KCM_PORT
  [kube-scheduler]=LLMOPS_SCHEDULER_PORT
  [kwok]=LLMOPS_KWOK_PORT
  [prometheus]=LLMOPS_PROMETHEUS_PORT
)

log() { printf 'dev-cluster: %s\n' "$*" >&2; }
die() {
  printf 'dev-cluster: error: %s\n' "$*" >&2
  exit 1
}

# is_ours <pid> <name>: the process runs our binary for this state dir (not someone else's).
is_ours() {
  local pid=$1 name=$2 exe cmdline
  [[ -n "$pid" && -d /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ "$exe" == "$(readlink -f "${BIN[$name]}")" ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$STATE/"* ]]
}

# our_pids <name>: every live process of this component for this state dir (pidfile or not).
# One `find` lists every /proc/<pid>/exe target, so this stays fast with many processes.
our_pids() {
  local name=$1 bin dir target pid
  bin=$(readlink -f "${BIN[$name]}")
  while read -r dir target; do
    target=${target% (deleted)}
    [[ "$target" == "$bin" ]] || continue
    pid=${dir#/proc/}
    is_ours "$pid" "$name" && echo "$pid"
  done < <(find /proc -mindepth 2 -maxdepth 2 -name exe -printf '%h %l\n' 2>/dev/null)
  return 0
}

pidfile_pid() {
  [[ -f "$PIDS/$1.pid" ]] && cat "$PIDS/$1.pid"
  return 0
}

# port_owner <port>: "pid name" of the process listening on 127.0.0.1/any at that port, if any.
port_owner() {
  ss -ltnpH "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\2 \1/p' | head -n1
}

port_in_use() {
  [[ -n "$(ss -ltnH "( sport = :$1 )" 2>/dev/null)" ]]
}

# stop_pid <pid> <name>: TERM, wait, then KILL; only ever called on pids is_ours accepted.
stop_pid() {
  local pid=$1 name=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    [[ -d /proc/$pid ]] || return 0
    # A zombie we do not reap still has /proc/pid; treat it as gone.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  log "$name (pid $pid) still running 5s after TERM; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_component() {
  local name=$1 pid
  for pid in $(pidfile_pid "$name") $(our_pids "$name"); do
    if is_ours "$pid" "$name"; then
      stop_pid "$pid" "$name"
    fi
  done
  rm -f "$PIDS/$name.pid"
}
