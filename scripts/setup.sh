#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent and quiet when already done:
# npm dependencies (from package-lock.json), the Temporal CLI + tctl, versitygw, the trainer's
# Python environment (trainer/install.sh: uv, PyTorch), the example services (examples/install.sh: a
# Python environment and a Go binary), and Chromium (only for the run report's
# screenshot test).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

stamp=node_modules/.package-lock.stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "[setup] installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
bash temporal/install.sh
bash infra/local-s3/install.sh
# The reference trainer's Python environment (trainer/.venv, from trainer/uv.lock).
bash trainer/install.sh
# The Python and Go example services the tests run (examples/python/.venv, examples/go/.bin).
bash examples/install.sh
# Headless Chromium renders the run report in a test; without it everything else still works.
if ! command -v chromium >/dev/null 2>&1; then
  echo "[setup] installing chromium (apt-get)" >&2
  chromium_start=$(date +%s)
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1; then
    echo "[setup] chromium installed in $(( $(date +%s) - chromium_start ))s" >&2
  else
    echo "[setup] could not install chromium with apt-get; only the run report's screenshot test needs it (install a 'chromium' binary on PATH)" >&2
  fi
fi
echo "[setup] ready in $(( $(date +%s) - start ))s (tools in .tools/bin)" >&2
