#!/usr/bin/env bash
# Builds helm once from the Go module proxy, into a cache outside the repo:
#   ${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}/helm-<version>/bin/helm
# The version is pinned by the wrapper module hack/tools/gomod/helm/ (go.mod `tool` directive +
# go.sum). A stamp file (.complete) is written only after a full build; it holds a key derived from
# go.mod/go.sum, the Go version and the ldflags, so a changed pin or toolchain rebuilds from scratch.
# Prints the path of the helm binary on stdout.
# Usage: hack/tools/build-helm.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODDIR=$ROOT/hack/tools/gomod/helm
CACHE=${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf 'build-helm: %s\n' "$*" >&2; }
die() { printf 'build-helm: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found; install Go >= 1.26 (hack/cluster/deps.sh installs Debian's golang-go)"

gomod_version() {  # gomod_version <module path>: the version the wrapper go.mod pins
  awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' \
    "$MODDIR/go.mod"
}

HELM_VERSION=$(gomod_version helm.sh/helm/v3)
CLIENT_GO_VERSION=$(gomod_version k8s.io/client-go)
[[ -n "$HELM_VERSION" && -n "$CLIENT_GO_VERSION" ]] || die "cannot read pinned versions from $MODDIR/go.mod"
OUT=$CACHE/helm-$HELM_VERSION

# Helm's own Makefile derives the default Kubernetes version (used by `helm template` and lint) from
# the client-go it is built with: v0.X.Y -> 1.X.
k8s_minor=${CLIENT_GO_VERSION#v0.}
k8s_minor=${k8s_minor%%.*}
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

key=$({
  go env GOVERSION
  cat "$MODDIR/go.mod" "$MODDIR/go.sum"
  printf '%s\n' "$LDFLAGS"
} | sha256sum | cut -d' ' -f1)

mkdir -p "$CACHE"
# One helm build at a time per cache; a second caller waits, then finds the stamp.
exec 9>"$CACHE/.build-helm.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.build-helm.lock; waiting"
  flock 9
fi

if [[ -f "$OUT/.complete" && "$(cat "$OUT/.complete")" == "$key" && -x "$OUT/bin/helm" ]]; then
  log "helm-$HELM_VERSION up to date"
  echo "$OUT/bin/helm"
  exit 0
fi

log "building helm $HELM_VERSION (first build takes a few minutes; later ones reuse the Go build cache)"
rm -f "$OUT/.complete"
mkdir -p "$OUT"
staging=$OUT/bin.partial
rm -rf "$staging"
mkdir -p "$staging"
start=$SECONDS
(cd "$MODDIR" && CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$staging/helm" helm.sh/helm/v3/cmd/helm)
rm -rf "$OUT/bin"
mv "$staging" "$OUT/bin"
printf '%s' "$key" >"$OUT/.complete"
log "helm-$HELM_VERSION built in $((SECONDS - start))s"
echo "$OUT/bin/helm"
