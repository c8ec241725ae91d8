#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent and quiet when already done:
# npm dependencies (from package-lock.json), the Temporal CLI + tctl, versitygw.
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
echo "[setup] ready in $(( $(date +%s) - start ))s (tools in .tools/bin)" >&2
