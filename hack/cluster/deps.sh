#!/usr/bin/env bash
# Installs the Debian packages the dev cluster and the tests need, only when they are missing.
# Prometheus comes from Debian; the control plane is built from Go modules (build.sh).
# If the prometheus package starts its own systemd service on :9090 we leave it alone:
# up.sh runs its own Prometheus process on a loopback port.
set -euo pipefail

# command -> Debian package that provides it
declare -A wanted=(
  [prometheus]=prometheus
  [openssl]=openssl
  [curl]=curl
  [ss]=iproute2
  [flock]=util-linux
  [chromium]=chromium
)
# The HTML eval report is tested in headless Chromium (tests/integration/test_report_browser.py);
# it needs one font to lay text out.
# Go is not installed from Debian: bookworm's golang-go (1.19) is too old for the wrapper modules
# (go 1.26); build.sh says so if the Go on PATH is missing or older.

missing=()
for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("${wanted[$cmd]}")
  fi
done

[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)

if ((${#missing[@]} == 0)); then
  echo "deps: all present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "deps: installing ${missing[*]}"
# Keep a package's postinst from starting services; we run our own processes.
export DEBIAN_FRONTEND=noninteractive
policy_added=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
trap '[[ $policy_added == 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
