#!/usr/bin/env bash
# Builds llmops-health (hack/tools/health: Argo CD health scripts in gopher-lua, Flux's kstatus)
# once, into ${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}/llmops-health-<key>/bin/. Prints its path.
# Usage: hack/tools/build-health.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOL=build-health
# shellcheck source=hack/tools/lib.sh
source "$ROOT/hack/tools/lib.sh"
MODDIR=$ROOT/hack/tools/health
build_tool "$CACHE/llmops-health-$(gomod_version "$MODDIR/go.mod" sigs.k8s.io/cli-utils)" \
  "$MODDIR" . llmops-health "-s -w"
