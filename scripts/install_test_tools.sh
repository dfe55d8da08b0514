#!/usr/bin/env bash
# Install the system tools the test suite needs beyond the Python environment, from Debian's packages:
#   docker-compose      validates docker/docker-compose.yml with a real Compose implementation, and
#                       starts it for real on Docker Engine (docker.io: dockerd and its runtime)
#   debootstrap         builds the offline images' Debian base (no container registry is reachable)
#   binutils (objdump)  disassembles the native binaries to guard against AVX-512/AMX instructions
#   qemu-user           runs pgvector on an emulated AVX2-only CPU (-cpu Haswell)
#   chromium            the browser the UI test drives through Playwright (never downloaded by it);
#                       fonts-liberation, or the lineage graph renders as empty boxes in screenshots
# Idempotent and quiet: installs only what is missing; `apt-get update` only when apt has no candidate
# yet. Fails loudly. Needs root (or passwordless sudo) only when it installs.
#   usage: scripts/install_test_tools.sh
set -euo pipefail

# "command or file that proves it is there:packages that bring it"
needs=(
  "docker-compose:docker-compose"
  "dockerd:docker.io"
  "debootstrap:debootstrap"
  "objdump:binutils"
  "qemu-x86_64:qemu-user"
  "/usr/bin/chromium:chromium fonts-liberation"
)

missing=()
for need in "${needs[@]}"; do
  probe="${need%%:*}"
  if [[ "$probe" == /* ]]; then [[ -x "$probe" ]] && continue; else command -v "$probe" >/dev/null 2>&1 && continue; fi
  read -r -a packages <<<"${need#*:}"
  missing+=("${packages[@]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools.sh: missing ${missing[*]} and this system has no apt-get; install them by hand" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install_test_tools.sh: missing ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# An apt candidate only exists once the package lists have been fetched.
candidate="$(apt-cache policy "${missing[0]}" 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
  if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_test_tools.sh: apt-get update failed" >&2
    exit 1
  fi
fi

if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install_test_tools.sh: apt-get install ${missing[*]} failed" >&2
  exit 1
fi
