#!/usr/bin/env bash
# Installs what the production profile needs on this machine, idempotently and quietly when done:
#   - PostgreSQL from Debian's packages (apt-get, as root) unless initdb/pg_ctl are already there;
#   - the Temporal server and its SQL schema tool, built from the Go module proxy
#     (go install go.temporal.io/server/cmd/server@v1.31.2 and .../cmd/tools/sql@v1.31.2) into
#     .tools/bin/temporal-server and .tools/bin/temporal-sql-tool, plus the release's PostgreSQL
#     schemas copied from the module cache into .tools/temporal-server/schema;
#   - the Temporal CLI (operator commands) and versitygw through the existing install scripts.
# The build time of the server is printed once and kept in .tools/temporal-server/build-seconds.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.tools/bin"
dest="$root/.tools/temporal-server"
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.31.2}"
mkdir -p "$bin" "$dest"
say() { echo "[production/install] $*" >&2; }

# --- PostgreSQL (Debian's `postgresql`) ---
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  say "installing postgresql (apt-get)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  start=$(date +%s)
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # The profile runs its own cluster under .data/; Debian's default cluster is not needed.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do $sudo pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
  say "postgresql installed in $(( $(date +%s) - start ))s"
fi

# --- Temporal server + SQL tool ---
stamp="$dest/version"
if [ ! -x "$bin/temporal-server" ] || [ ! -x "$bin/temporal-sql-tool" ] || [ ! -d "$dest/schema/postgresql/v12" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TEMPORAL_SERVER_VERSION" ]; then
  command -v go >/dev/null || { say "Go is required (go install from the module proxy)"; exit 1; }
  say "building the Temporal server $TEMPORAL_SERVER_VERSION and temporal-sql-tool (first time only; ~10 min on 2 cores)"
  tmp="$dest/gobin.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  start=$(date +%s)
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
  mv -f "$tmp/server" "$bin/temporal-server"
  mv -f "$tmp/sql" "$bin/temporal-sql-tool"
  rmdir "$tmp"
  # The schema files ship in the module source; copy them so a cleaned module cache does not matter.
  mod="$(go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION"
  rm -rf "$dest/schema"; mkdir -p "$dest/schema/postgresql"
  cp -r "$mod/schema/postgresql/v12" "$dest/schema/postgresql/"
  chmod -R u+w "$dest/schema"
  secs=$(( $(date +%s) - start ))
  echo "$secs" > "$dest/build-seconds"
  echo "$TEMPORAL_SERVER_VERSION" > "$stamp"
  say "built in ${secs}s: $bin/temporal-server, $bin/temporal-sql-tool"
fi

# --- the Temporal CLI (namespace and search-attribute commands) and versitygw ---
[ -x "$bin/temporal" ] || bash "$root/temporal/install.sh"
bash "$root/infra/local-s3/install.sh"
