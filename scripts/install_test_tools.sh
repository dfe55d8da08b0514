#!/usr/bin/env bash
# Install the system tools the test suite needs beyond the Python environment: today a real Compose
# implementation (Debian's docker-compose) to validate docker/docker-compose.yml. Idempotent and
# quiet: does nothing when the tools are already there; `apt-get update` only when a package is
# missing from apt's lists. Fails loudly. Needs root (or passwordless sudo) only when it installs.
#   usage: scripts/install_test_tools.sh
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools.sh: docker-compose is missing and this system has no apt-get;" \
    "install Docker Compose (docker-compose on PATH) by hand" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install_test_tools.sh: docker-compose is missing; run this script as root to install it" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# An apt candidate only exists once the package lists have been fetched.
candidate="$(apt-cache policy docker-compose 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
  if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_test_tools.sh: apt-get update failed" >&2
    exit 1
  fi
fi

if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends docker-compose >"$log" 2>&1; then
  cat "$log" >&2
  echo "install_test_tools.sh: apt-get install docker-compose failed" >&2
  exit 1
fi

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "install_test_tools.sh: docker-compose was installed but is not on PATH" >&2
  exit 1
fi
