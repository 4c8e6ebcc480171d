#!/usr/bin/env bash
# Builds the dev cluster's binaries once, into a cache outside the repo:
#   ${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}/<name>-<version>/bin/
# Components: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3), kwok (sigs.k8s.io/kwok/cmd/kwok), plus the KWOK default stages
# the Gateway API standard CRDs and the Inference Extension's InferencePool CRD (v1), taken from
# their Go modules.
#
# Each component directory gets a stamp file (.complete) only after a full build; the stamp holds a
# key derived from the wrapper go.mod/go.sum, the Go version and the ldflags. A missing or different
# stamp means the build was never finished or is out of date, and it is redone from scratch.
# Usage: hack/cluster/build.sh [component...]
#   (components: etcd kwok gateway-api inference-extension k8s; default all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=hack/cluster/versions.sh
source "$ROOT/hack/cluster/versions.sh"

mkdir -p "$CACHE"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf 'build: %s\n' "$*" >&2; }
die() { printf 'build: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found on PATH; install Go >= 1.26 from https://go.dev/dl (or put /usr/local/go/bin on PATH)"
GO_MINOR=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
((${GO_MINOR:-0} >= 26)) || die "$(go env GOVERSION) is too old: the wrapper modules need Go >= 1.26 (install it from https://go.dev/dl)"

# One build at a time per cache: a second caller waits instead of racing on the same output.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.build.lock; waiting"
  flock 9
fi

stamp_key() {  # stamp_key <gomod dir> <extra...>: identifies exactly what a build was made from
  local dir=$1
  shift
  {
    go env GOVERSION
    cat "$dir/go.mod" "$dir/go.sum" 2>/dev/null
    printf '%s\n' "$@"
  } | sha256sum | cut -d' ' -f1
}

is_done() {  # is_done <component dir> <key>
  [[ -f "$1/.complete" && "$(cat "$1/.complete")" == "$2" ]]
}

finish() {  # finish <component dir> <key> <staging bin dir>: atomically publish, then stamp
  local out=$1 key=$2 staging=$3
  rm -rf "$out/bin"
  mv "$staging" "$out/bin"
  printf '%s' "$key" >"$out/.complete"
}

build_go() {  # build_go <gomod dir> <out dir> <ldflags> <pkg:binary-name>...
  local moddir=$1 out=$2 ldflags=$3
  shift 3
  local key
  key=$(stamp_key "$moddir" "$ldflags" "$@")
  if is_done "$out" "$key"; then
    log "$(basename "$out") up to date"
    return 0
  fi
  log "building $(basename "$out") (first build takes long; later ones reuse the Go build cache)"
  rm -f "$out/.complete"
  mkdir -p "$out"
  local staging="$out/bin.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  local start=$SECONDS spec pkg name
  local pkgs=()
  for spec in "$@"; do
    pkg=${spec%%:*}
    name=${spec##*:}
    if [[ "$pkg" == "$name" ]]; then
      pkgs+=("$pkg")  # binary named after the package, build them in one go
    else
      (cd "$moddir" && go build -trimpath -ldflags "$ldflags" -o "$staging/$name" "$pkg")
    fi
  done
  if ((${#pkgs[@]})); then
    (cd "$moddir" && go build -trimpath -ldflags "$ldflags" -o "$staging/" "${pkgs[@]}")
  fi
  finish "$out" "$key" "$staging"
  log "$(basename "$out") built in $((SECONDS - start))s"
}

module_dir() {  # module_dir <module@version>: download into the module cache, print its directory
  local json
  json=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$1" 2>&1) || true
  if ! grep -q '"Dir"' <<<"$json"; then
    die "go mod download $1 failed: $(grep -o '"Error": "[^"]*"' <<<"$json" || echo "$json" | tail -n1)"
  fi
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json"
}

build_etcd() {
  build_go "$ROOT/hack/cluster/gomod/etcd" "$ETCD_DIR" "-s -w" "go.etcd.io/etcd/server/v3:etcd"
}

build_kwok() {
  build_go "$ROOT/hack/cluster/gomod/kwok" "$KWOK_DIR" \
    "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok:kwok"
  # KWOK's own default stages (what kwokctl feeds the controller): nodes become Ready and keep a
  # lease; pods become Running and Ready, complete, and go away on delete.
  if [[ ! -s "$KWOK_DIR/stages.yaml" ]]; then
    local dir
    dir=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
    [[ -d "$dir" ]] || die "could not download sigs.k8s.io/kwok@$KWOK_VERSION from the Go module proxy"
    local f
    {
      for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        cat "$dir/kustomize/stage/$f"
      done
    } >"$KWOK_DIR/stages.yaml.partial"
    mv "$KWOK_DIR/stages.yaml.partial" "$KWOK_DIR/stages.yaml"
  fi
}

build_gateway_api() {
  if [[ -f "$GATEWAY_API_DIR/.complete" ]]; then
    log "gateway-api-$GATEWAY_API_VERSION up to date"
    return 0
  fi
  local dir
  dir=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  [[ -d "$dir/config/crd/standard" ]] || die "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION has no config/crd/standard"
  rm -rf "$GATEWAY_API_DIR"
  mkdir -p "$GATEWAY_API_DIR/crds"
  cp "$dir"/config/crd/standard/*.yaml "$GATEWAY_API_DIR/crds/"
  rm -f "$GATEWAY_API_DIR/crds/kustomization.yaml"
  chmod u+w "$GATEWAY_API_DIR"/crds/*.yaml
  printf '%s' "$GATEWAY_API_VERSION" >"$GATEWAY_API_DIR/.complete"
  log "gateway-api CRDs copied from $dir"
}

build_inference_extension() {
  if [[ -f "$INFERENCE_EXTENSION_DIR/.complete" ]]; then
    log "gateway-api-inference-extension-$INFERENCE_EXTENSION_VERSION up to date"
    return 0
  fi
  local dir crd=inference.networking.k8s.io_inferencepools.yaml
  dir=$(module_dir "sigs.k8s.io/gateway-api-inference-extension@$INFERENCE_EXTENSION_VERSION")
  [[ -f "$dir/config/crd/bases/$crd" ]] ||
    die "sigs.k8s.io/gateway-api-inference-extension@$INFERENCE_EXTENSION_VERSION has no config/crd/bases/$crd"
  rm -rf "$INFERENCE_EXTENSION_DIR"
  mkdir -p "$INFERENCE_EXTENSION_DIR/crds"
  # Only the GA InferencePool (inference.networking.k8s.io/v1); the x-k8s.io alpha CRDs are not used.
  cp "$dir/config/crd/bases/$crd" "$INFERENCE_EXTENSION_DIR/crds/"
  chmod u+w "$INFERENCE_EXTENSION_DIR"/crds/*.yaml
  printf '%s' "$INFERENCE_EXTENSION_VERSION" >"$INFERENCE_EXTENSION_DIR/.complete"
  log "InferencePool CRD copied from $dir"
}

build_k8s() {
  local v=$K8S_VERSION minor
  minor=${v#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$v"
  build_go "$ROOT/hack/cluster/gomod/k8s" "$K8S_DIR" "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

components=("$@")
((${#components[@]})) || components=(etcd kwok gateway-api inference-extension k8s)
start=$SECONDS
for c in "${components[@]}"; do
  case $c in
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    gateway-api) build_gateway_api ;;
    inference-extension) build_inference_extension ;;
    k8s) build_k8s ;;
    *) die "unknown component '$c' (choose from: etcd kwok gateway-api inference-extension k8s)" ;;
  esac
done
log "all done in $((SECONDS - start))s; binaries under $CACHE"
