#!/usr/bin/env bash
# Stops every process up.sh started for this checkout and leaves none behind; safe to run twice.
# Processes are found by pidfile and, as a fallback, by scanning /proc for our exact binaries
# running with this checkout's .cluster/ paths (never by a broad name, so a Debian prometheus
# service or another checkout's cluster is left alone).
# State (.cluster/: certificates, etcd data, Prometheus data) is kept so the next start is fast;
# pass --purge to delete it too.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    *) die "unknown argument '$arg' (usage: down.sh [--purge])" ;;
  esac
done

# Wait for a running up.sh (e.g. another test session) instead of racing it.
if [[ -d "$STATE" ]]; then
  exec 8>"$STATE/.up.lock"
  flock 8
fi

stopped=0
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  name=${COMPONENTS[$i]}
  before=$(our_pids "$name" | wc -l)
  stop_component "$name"
  if ((before)); then
    log "stopped $name"
    stopped=$((stopped + before))
  fi
done

left=()
for name in "${COMPONENTS[@]}"; do
  for pid in $(our_pids "$name"); do left+=("$name:$pid"); done
done
((${#left[@]} == 0)) || die "still running after stop: ${left[*]}"

if ((purge)); then
  rm -rf "$STATE"
  log "removed $STATE"
fi
log "down ($stopped process(es) stopped)"
