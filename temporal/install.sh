#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and tctl into .tools/bin.
# Idempotent: a binary already in .tools/bin, or a suitable one on PATH, is reused.
# No registry ships these binaries, so they are built from the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}" # last release without `replace` in go.mod; bundles server 1.29.1 + UI
TCTL_VERSION="${TCTL_VERSION:-v1.18.4}"

# reuse <name> <version-substring>: link a suitable binary from PATH into .tools/bin
reuse() {
  local name="$1" want="$2" found
  [ -x "$bin/$name" ] && return 0
  found="$(command -v "$name" 2>/dev/null || true)"
  if [ -n "$found" ] && [ "$found" != "$bin/$name" ] && "$found" --version 2>/dev/null | grep -q "$want"; then
    ln -sf "$found" "$bin/$name"
    return 0
  fi
  return 1
}

build() {
  local name="$1" pkg="$2"
  echo "[temporal/install] building $name from $pkg (first time only)" >&2
  GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "$pkg"
}

command -v go >/dev/null || { echo "[temporal/install] Go is required (go install from the module proxy)" >&2; exit 1; }

# Any CLI bundling server 1.25+ has the dev server flags we use (--search-attribute, --dynamic-config-value).
reuse temporal "Server 1\.\(2[5-9]\|[3-9][0-9]\)" || build temporal "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
# tctl is deprecated upstream and optional here: the `temporal` CLI covers every command we document.
# Some module proxies do not serve it; then setup goes on without it and says so.
if ! reuse tctl "${TCTL_VERSION#v}"; then
  build tctl "github.com/temporalio/tctl/cmd/tctl@$TCTL_VERSION" 2>/dev/null ||
    echo "[temporal/install] note: tctl $TCTL_VERSION is not available from this Go module proxy; skipped (use the temporal CLI)" >&2
fi
echo "[temporal/install] temporal: $("$bin/temporal" --version | head -1)" >&2
