#!/usr/bin/env bash
# Builds helm once from the Go module proxy, into a cache outside the repo:
#   ${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}/helm-<version>/bin/helm
# The version is pinned by the wrapper module hack/tools/gomod/helm/ (go.mod `tool` directive +
# go.sum); hack/tools/lib.sh stamps and caches the build. Prints the path of the helm binary.
# Usage: hack/tools/build-helm.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOL=build-helm
# shellcheck source=hack/tools/lib.sh
source "$ROOT/hack/tools/lib.sh"
MODDIR=$ROOT/hack/tools/gomod/helm

HELM_VERSION=$(gomod_version "$MODDIR/go.mod" helm.sh/helm/v3)
CLIENT_GO_VERSION=$(gomod_version "$MODDIR/go.mod" k8s.io/client-go)
[[ -n "$HELM_VERSION" && -n "$CLIENT_GO_VERSION" ]] || tool_die "cannot read pinned versions from $MODDIR/go.mod"

# Helm's own Makefile derives the default Kubernetes version (used by `helm template` and lint) from
# the client-go it is built with: v0.X.Y -> 1.X.
k8s_minor=${CLIENT_GO_VERSION#v0.}
k8s_minor=${k8s_minor%%.*}
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

build_tool "$CACHE/helm-$HELM_VERSION" "$MODDIR" helm.sh/helm/v3/cmd/helm helm "$LDFLAGS"
