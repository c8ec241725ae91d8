#!/usr/bin/env bash
# Installs versitygw (Apache-2.0 S3 gateway over a local folder) into .tools/bin.
# Idempotent: reuses .tools/bin/versitygw or a suitable one on PATH. Built from the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.7.0}"

if [ -x "$bin/versitygw" ]; then exit 0; fi
found="$(command -v versitygw 2>/dev/null || true)"
if [ -n "$found" ] && "$found" --version 2>/dev/null | grep -q "${VERSITYGW_VERSION#v}"; then
  ln -sf "$found" "$bin/versitygw"; exit 0
fi
command -v go >/dev/null || { echo "[local-s3/install] Go is required (go install from the module proxy)" >&2; exit 1; }
echo "[local-s3/install] building versitygw $VERSITYGW_VERSION (first time only)" >&2
GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
