# Sourced by build.sh, up.sh and down.sh: pinned versions and where their builds live.
# The Go wrapper modules under hack/cluster/gomod/ are the source of truth for versions.
_gomod_version() {  # _gomod_version <gomod dir> <module path>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' \
    "$ROOT/hack/cluster/gomod/$1/go.mod"
}
CACHE=${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}
K8S_VERSION=$(_gomod_version k8s k8s.io/kubernetes)
ETCD_VERSION=$(_gomod_version etcd go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(_gomod_version kwok sigs.k8s.io/kwok)
GATEWAY_API_VERSION=v1.6.3  # v1.7.0 needs Go >= 1.27
INFERENCE_EXTENSION_VERSION=v1.0.0  # sigs.k8s.io/gateway-api-inference-extension: InferencePool v1
K8S_DIR=$CACHE/k8s-$K8S_VERSION
ETCD_DIR=$CACHE/etcd-$ETCD_VERSION
KWOK_DIR=$CACHE/kwok-$KWOK_VERSION
GATEWAY_API_DIR=$CACHE/gateway-api-$GATEWAY_API_VERSION
INFERENCE_EXTENSION_DIR=$CACHE/gateway-api-inference-extension-$INFERENCE_EXTENSION_VERSION
