#!/usr/bin/env bash
# Starts the Temporal dev server in the background unless one already answers:
# SQLite file persistence (survives restarts), Web UI, the project's search attributes,
# dynamic config from temporal/dynamic-config.yaml. Data in .data/temporal, log in .data/logs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/temporal"
bin="$root/.tools/bin/temporal"
port="${TEMPORAL_PORT:-7233}"
ui_port="${TEMPORAL_UI_PORT:-8233}"
data="${SPARK_DATA_DIR:-$root/.data}"
mkdir -p "$data/temporal" "$data/logs" "$data/run"

[ -x "$bin" ] || bash "$here/install.sh"

healthy() { "$bin" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; }
# A server started by an older checkout may lack attributes added since: register what is missing.
ensure_attributes() {
  local have
  have="$("$bin" operator search-attribute list --address "127.0.0.1:$port" 2>/dev/null || true)"
  while read -r name type; do
    case "$name" in ''|'#'*) continue;; esac
    grep -qw "$name" <<<"$have" || "$bin" operator search-attribute create --address "127.0.0.1:$port" --name "$name" --type "$type" >/dev/null 2>&1 || true
  done < "$here/search-attributes.txt"
}
if healthy; then
  ensure_attributes
  echo "[temporal/start] already running on 127.0.0.1:$port (UI http://127.0.0.1:$ui_port)" >&2
  exit 0
fi

args=(server start-dev --ip 127.0.0.1 --port "$port" --ui-port "$ui_port"
  --db-filename "$data/temporal/temporal.db" --log-level warn)
while read -r name type; do
  case "$name" in ''|'#'*) continue;; esac
  args+=(--search-attribute "$name=$type")
done < "$here/search-attributes.txt"
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue;; esac
  args+=(--dynamic-config-value "${line%%:*}=$(echo "${line#*:}" | sed 's/^ *//')")
done < "$here/dynamic-config.yaml"

nohup "$bin" "${args[@]}" >>"$data/logs/temporal.log" 2>&1 &
echo $! > "$data/run/temporal.pid"
for _ in $(seq 1 120); do
  if healthy; then
    echo "[temporal/start] dev server on 127.0.0.1:$port, Web UI http://127.0.0.1:$ui_port" >&2
    exit 0
  fi
  sleep 0.5
done
echo "[temporal/start] the dev server did not become healthy; see $data/logs/temporal.log" >&2
exit 1
