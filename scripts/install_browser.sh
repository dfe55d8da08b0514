#!/usr/bin/env bash
# Install the browser the UI test drives: Debian's chromium (Playwright uses it through
# executable_path, so no browser is ever downloaded by Playwright itself). Idempotent and quiet: does
# nothing when /usr/bin/chromium exists; `apt-get update` only when apt has no candidate for it yet.
# Fails loudly. Needs root (or passwordless sudo) only when it installs.
#   usage: scripts/install_browser.sh
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: $CHROMIUM is missing and this system has no apt-get;" \
    "install Chromium by hand (the UI test runs $CHROMIUM)" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install_browser.sh: $CHROMIUM is missing; run this script as root to install it" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# An apt candidate only exists once the package lists have been fetched.
candidate="$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
  if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_browser.sh: apt-get update failed" >&2
    exit 1
  fi
fi

# fonts-liberation: without any font the lineage graph renders as empty boxes in the screenshots.
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >"$log" 2>&1; then
  cat "$log" >&2
  echo "install_browser.sh: apt-get install chromium failed" >&2
  exit 1
fi

if [[ ! -x "$CHROMIUM" ]]; then
  echo "install_browser.sh: chromium was installed but $CHROMIUM does not exist" >&2
  exit 1
fi
