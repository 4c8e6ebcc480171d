#!/usr/bin/env bash
# Installs the Debian packages the dev cluster and the tests need, only when they are missing
# (`make demo`, `make test` and `make venv` run it first; it says "all present" and exits when
# nothing is missing). Runs apt-get as root, through sudo when not root, and says what to do when
# neither works. Prometheus (and promtool) come from Debian; the control plane is built from Go
# modules (build.sh).
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
# `python3 -m venv` needs ensurepip, which Debian ships separately.
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  missing+=("python3-venv")
fi

[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)

if ((${#missing[@]} == 0)); then
  echo "deps: all present"
  exit 0
fi

cannot() {
  printf 'deps: error: %s\ndeps: install them yourself: apt-get install %s\n' "$1" "${missing[*]}" >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || cannot "missing ${missing[*]}, and apt-get is not available (not a Debian-like system)"
if [[ $(id -u) -eq 0 ]]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
  # Without a terminal sudo cannot ask for a password: fail now rather than hang.
  [[ -t 0 ]] || sudo -n true 2>/dev/null || cannot "missing ${missing[*]}; not root, and sudo needs a password (run: sudo bash hack/cluster/deps.sh)"
else
  cannot "missing ${missing[*]}; not root and sudo is not installed (run this script as root)"
fi
echo "deps: installing ${missing[*]}${SUDO:+ (with sudo)}"
# Keep a package's postinst from starting services; we run our own processes.
export DEBIAN_FRONTEND=noninteractive
policy_added=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
trap '[[ $policy_added == 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq || cannot "apt-get update failed (is the Debian mirror reachable?)"
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || cannot "apt-get install failed"
echo "deps: done"
