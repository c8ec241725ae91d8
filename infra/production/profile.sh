#!/usr/bin/env bash
# The production profile on one machine, from real parts: PostgreSQL (Debian's package, its own
# cluster under .data/production/postgres), the Temporal server (not the dev server) on it with SQL
# visibility and the project's search attributes, versitygw as S3, the sandbox model server and
# trainer standing in for vLLM and the GPU trainer, and N worker processes (src/workers/main.ts)
# polling one task queue. Everything is idempotent: a part that already answers is left alone.
#
#   profile.sh up                 install what is missing (install.sh), then start every part
#   profile.sh down               stop every part (data stays in .data/production)
#   profile.sh status             one line per part
#   profile.sh env                the environment a worker or client of this profile needs (export lines)
#   profile.sh start|stop PART    PART: postgres, temporal, s3, sandbox, workers, worker-N
#   profile.sh kill worker-N      SIGKILL one worker (fault tests)
#   profile.sh reset-data         down, then delete the S3 data and the sandbox logs (Temporal's data stays)
#
# Settings (environment): SPARK_PROD_DATA (.data/production), SPARK_PG_PORT (25432),
# SPARK_PROD_TEMPORAL_PORT (27233; history/matching/worker/HTTP on +1/+2/+6/+10, membership on 26933..),
# SPARK_PROD_S3_PORT (27070), SPARK_PROD_SIM_PORT (28300), SPARK_PROD_TRAINER_PORT (28400),
# SPARK_PROD_WORKERS (2), SPARK_PROD_TASK_QUEUE (spark), SPARK_PROD_BUCKET (spark).
# Logs: .data/production/logs/<part>.log; pid files: .data/production/run/<part>.pid.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/infra/production"
data="${SPARK_PROD_DATA:-$root/.data/production}"
logs="$data/logs"
run="$data/run"
tools="$root/.tools/bin"

pg_port="${SPARK_PG_PORT:-25432}"
pg_password="${SPARK_PG_PASSWORD:-temporal}"
t_port="${SPARK_PROD_TEMPORAL_PORT:-27233}"
s3_port="${SPARK_PROD_S3_PORT:-27070}"
sim_port="${SPARK_PROD_SIM_PORT:-28300}"
trainer_port="${SPARK_PROD_TRAINER_PORT:-28400}"
workers="${SPARK_PROD_WORKERS:-2}"
task_queue="${SPARK_PROD_TASK_QUEUE:-spark}"
bucket="${SPARK_PROD_BUCKET:-spark}"
access_key="${SPARK_PROD_ACCESS_KEY:-sparkprod}"
secret_key="${SPARK_PROD_SECRET_KEY:-sparkprodsecret}"
namespace="${TEMPORAL_NAMESPACE:-default}"
address="127.0.0.1:$t_port"

mkdir -p "$logs" "$run"
say() { echo "[production] $*" >&2; }
die() { say "$*"; exit 1; }

# ---------------------------------------------------------------- helpers
pid_of() { cat "$run/$1.pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
# stop_pid NAME [SIGNAL]: signal the process in run/NAME.pid, wait up to 30 s for it to end, then SIGKILL.
stop_pid() {
  local name="$1" sig="${2:-TERM}" p
  p="$(pid_of "$name")"
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -"$sig" "$p" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    say "stopped $name (pid $p)"
  fi
  rm -f "$run/$name.pid"
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# not_foreign NAME PORT: a port that answers must be this profile's NAME (by its pid file); otherwise
# the part would talk to someone else's server (a dev server, another profile), so stop here.
not_foreign() {
  if listening "$2" && ! alive "$1"; then
    die "127.0.0.1:$2 answers but not as this profile's $1 (no live pid in $run/$1.pid): stop that process or set the port (see profile.sh's header)"
  fi
}
wait_for() { # wait_for SECONDS WHAT LOG CMD...
  local secs="$1" what="$2" log="$3"; shift 3
  for _ in $(seq 1 $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up in ${secs}s; see $log"
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# Runs a PostgreSQL command as the postgres user when we are root (the server refuses to run as root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdata="$data/postgres"
pgsock="$data/postgres-socket"
psql_admin() { as_pg "$(pg_bin)/psql" -h "$pgsock" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq "$@"; }
pg_ready() { as_pg "$(pg_bin)/pg_isready" -q -h "$pgsock" -p "$pg_port"; }

start_postgres() {
  [ -x "$(pg_bin)/initdb" ] || die "PostgreSQL is not installed: run infra/production/install.sh"
  mkdir -p "$pgdata" "$pgsock"
  touch "$logs/postgres.log"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pgdata" "$pgsock" "$logs/postgres.log" && chmod 700 "$pgdata"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "initdb $pgdata"
    as_pg "$(pg_bin)/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 >>"$logs/postgres.log" 2>&1 ||
      die "initdb failed; see $logs/postgres.log"
  fi
  if ! pg_ready; then
    as_pg "$(pg_bin)/pg_ctl" -D "$pgdata" -l "$logs/postgres.log" -w -t 60 \
      -o "-p $pg_port -k $pgsock -c listen_addresses=127.0.0.1" start >/dev/null ||
      die "PostgreSQL did not start; see $logs/postgres.log"
  fi
  if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'temporal'")" != 1 ]; then
    psql_admin -c "CREATE ROLE temporal LOGIN CREATEDB PASSWORD '$pg_password'"
  fi
  say "PostgreSQL on 127.0.0.1:$pg_port ($pgdata)"
}
stop_postgres() {
  if [ -f "$pgdata/PG_VERSION" ] && pg_ready; then
    as_pg "$(pg_bin)/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null && say "stopped PostgreSQL"
  fi
}

# ---------------------------------------------------------------- Temporal schema + server
schema="$root/.tools/temporal-server/schema/postgresql/v12"
sqltool() { "$tools/temporal-sql-tool" --ep 127.0.0.1 -p "$pg_port" -u temporal --pw "$pg_password" --pl postgres12 "$@"; }
# setup_schema DB DIR: create the database and its base schema once; update-schema is idempotent
# (it applies the release's versioned changes the database does not have yet).
setup_schema() {
  local db="$1" dir="$2"
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    sqltool --db "$db" create-database >>"$logs/schema.log" 2>&1 || die "create-database $db failed; see $logs/schema.log"
    sqltool --db "$db" setup-schema -v 0.0 >>"$logs/schema.log" 2>&1 || die "setup-schema $db failed; see $logs/schema.log"
  fi
  sqltool --db "$db" update-schema -d "$schema/$dir/versioned" >>"$logs/schema.log" 2>&1 || die "update-schema $db failed; see $logs/schema.log"
}

temporal_env() {
  export SPARK_PG_PORT="$pg_port" SPARK_PG_PASSWORD="$pg_password"
  export TEMPORAL_PORT="$t_port" TEMPORAL_HISTORY_PORT=$((t_port + 1)) TEMPORAL_MATCHING_PORT=$((t_port + 2))
  export TEMPORAL_WORKER_PORT=$((t_port + 6)) TEMPORAL_HTTP_PORT=$((t_port + 10)) TEMPORAL_MEMBERSHIP_BASE="${TEMPORAL_MEMBERSHIP_BASE:-2693}"
  export TEMPORAL_DYNAMIC_CONFIG="$here/temporal/dynamicconfig.yaml"
}
healthy() { "$tools/temporal" operator cluster health --address "$address" >/dev/null 2>&1; }

start_temporal() {
  [ -x "$tools/temporal-server" ] || die "the Temporal server is not built: run infra/production/install.sh"
  pg_ready || start_postgres
  setup_schema temporal temporal
  setup_schema temporal_visibility visibility
  not_foreign temporal "$t_port"
  if ! healthy; then
    temporal_env
    nohup "$tools/temporal-server" --config-file "$here/temporal/server.yaml" --allow-no-auth start \
      </dev/null >>"$logs/temporal.log" 2>&1 &
    echo $! > "$run/temporal.pid"
    server_up() { alive temporal || die "the Temporal server exited; see $logs/temporal.log"; healthy; }
    wait_for 120 "the Temporal server" "$logs/temporal.log" server_up
  fi
  register_namespace_and_attributes
  say "Temporal server on $address (PostgreSQL store and SQL visibility)"
}
stop_temporal() { stop_pid temporal TERM; }

register_namespace_and_attributes() {
  local t=("$tools/temporal" --address "$address") have
  if ! "${t[@]}" operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    "${t[@]}" operator namespace create --namespace "$namespace" --retention 72h >/dev/null
    # The frontend learns new namespaces on its registry refresh (about 10 s).
    wait_for 60 "namespace $namespace" "$logs/temporal.log" "${t[@]}" workflow list --namespace "$namespace" --limit 1
  fi
  have="$("${t[@]}" operator search-attribute list --namespace "$namespace" 2>/dev/null || true)"
  while read -r name type; do
    case "$name" in ''|'#'*) continue;; esac
    grep -qw "$name" <<<"$have" ||
      "${t[@]}" operator search-attribute create --namespace "$namespace" --name "$name" --type "$type" >/dev/null
  done < "$root/temporal/search-attributes.txt"
  # Usable once a visibility query naming them is accepted.
  wait_for 60 "the search attributes" "$logs/temporal.log" \
    "${t[@]}" workflow list --namespace "$namespace" --limit 1 --query 'SparkRun = "x" AND SparkStep >= 0 AND SparkReward >= 0'
}

# ---------------------------------------------------------------- S3 (versitygw)
s3_env() {
  export SPARK_DATA_DIR="$data" SPARK_S3_PORT="$s3_port" SPARK_S3_BUCKET="$bucket"
  export AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key"
}
start_s3() { not_foreign s3 "$s3_port"; (s3_env; bash "$root/infra/local-s3/start.sh" 2>>"$logs/s3.log") || die "S3 did not start; see $logs/s3.log"; say "S3 (versitygw) on http://127.0.0.1:$s3_port bucket $bucket"; }
stop_s3() { stop_pid s3 TERM; }

# ---------------------------------------------------------------- the sandbox (stands in for vLLM and the GPU trainer)
start_sandbox() {
  not_foreign sim "$sim_port"; not_foreign trainer "$trainer_port"
  healthy || die "the sandbox is started through the local stack's command, which starts a dev server when Temporal does not answer: start temporal first"
  (
    s3_env
    export TEMPORAL_PORT="$t_port" SPARK_SIM_PORT="$sim_port" SPARK_TRAINER_PORT="$trainer_port"
    node "$root/bin/spark.mjs" stack up </dev/null >>"$logs/sandbox.log" 2>&1
  ) || die "the sandbox did not start; see $logs/sandbox.log"
  say "sandbox model server http://127.0.0.1:$sim_port/v1, trainer http://127.0.0.1:$trainer_port (events $logs/trainer-events.jsonl)"
}
stop_sandbox() { stop_pid trainer TERM; stop_pid sim TERM; }

# ---------------------------------------------------------------- workers
bundle="$data/workflow-bundle.js"
# One prebuilt workflow bundle for every worker (each would otherwise bundle at start), rebuilt
# when anything under src/ changes (bundle_rebuilt=1 then).
bundle_rebuilt=0
build_bundle() {
  local sum
  sum="$(cd "$root" && find src -type f -name '*.ts' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  [ -f "$bundle" ] && [ "$(cat "$bundle.sum" 2>/dev/null)" = "$sum" ] && return 0
  bundle_rebuilt=1
  say "bundling workflows (src/workflows/index.ts)"
  (cd "$root" && SPARK_BUNDLE_OUT="$bundle.tmp" node --import tsx --input-type=module -e '
    import { bundleWorkflowCode } from "@temporalio/worker";
    import { writeFileSync } from "node:fs";
    const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error };
    const { code } = await bundleWorkflowCode({ workflowsPath: new URL("./src/workflows/index.ts", `file://${process.cwd()}/`).pathname, logger: quiet });
    writeFileSync(process.env.SPARK_BUNDLE_OUT, code);
  ') >>"$logs/bundle.log" 2>&1 || die "bundling the workflows failed; see $logs/bundle.log"
  mv -f "$bundle.tmp" "$bundle"
  echo "$sum" > "$bundle.sum"
}

worker_env() {
  export TEMPORAL_ADDRESS="$address" TEMPORAL_NAMESPACE="$namespace" SPARK_TASK_QUEUE="$task_queue"
  export SPARK_S3_ENDPOINT="http://127.0.0.1:$s3_port" SPARK_S3_BUCKET="$bucket" SPARK_S3_REGION=us-east-1 SPARK_S3_FORCE_PATH_STYLE=true
  export AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key"
  export SPARK_WORKFLOW_BUNDLE="$bundle"
}
start_worker() { # start_worker N
  local name="worker-$1" p log="$logs/worker-$1.log"
  alive "$name" && return 0
  (
    worker_env
    cd "$root"
    nohup node --import tsx src/workers/main.ts </dev/null >>"$log" 2>&1 &
    echo $! > "$run/$name.pid"
  )
  p="$(pid_of "$name")"
  worker_ready() { kill -0 "$p" 2>/dev/null || die "$name exited; see $log"; grep -q "\"worker-ready\".*\"pid\":$p\b" "$log"; }
  wait_for 120 "$name" "$log" worker_ready
  say "$name (pid $p) polls task queue $task_queue"
}
start_workers() {
  build_bundle
  # Workers running older code are replaced (SIGTERM: they finish or hand back what they run).
  if [ "$bundle_rebuilt" = 1 ]; then stop_workers; fi
  local pids=() i
  for i in $(seq 1 "$workers"); do start_worker "$i" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || die "a worker did not start"; done
}
stop_workers() { local f; for f in "$run"/worker-*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)" TERM; done; return 0; }

# ---------------------------------------------------------------- commands
status_line() { # status_line NAME CHECK...
  local name="$1"; shift
  if "$@" >/dev/null 2>&1; then echo "$name: up"; else echo "$name: down"; fi
}
status() {
  status_line "postgres 127.0.0.1:$pg_port" pg_ready
  status_line "temporal $address" healthy
  status_line "s3 http://127.0.0.1:$s3_port" curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$s3_port/"
  status_line "sandbox models http://127.0.0.1:$sim_port/v1" curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$sim_port/v1/models"
  status_line "sandbox trainer http://127.0.0.1:$trainer_port" curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$trainer_port/health"
  local f
  for f in "$run"/worker-*.pid; do [ -e "$f" ] && status_line "$(basename "$f" .pid) (pid $(cat "$f"))" alive "$(basename "$f" .pid)"; done
  return 0
}

cmd="${1:-}"; part="${2:-}"
case "$cmd" in
  up)
    bash "$here/install.sh"
    start=$(date +%s)
    start_postgres; start_temporal; start_s3; start_sandbox; start_workers
    say "up in $(( $(date +%s) - start ))s; clients: eval \"\$(bash infra/production/profile.sh env)\""
    ;;
  down) stop_workers; stop_sandbox; stop_s3; stop_temporal; stop_postgres ;;
  status) status ;;
  env)
    worker_env
    for v in TEMPORAL_ADDRESS TEMPORAL_NAMESPACE SPARK_TASK_QUEUE SPARK_S3_ENDPOINT SPARK_S3_BUCKET SPARK_S3_REGION SPARK_S3_FORCE_PATH_STYLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY SPARK_WORKFLOW_BUNDLE; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'export SPARK_SIM_URL=%q\n' "http://127.0.0.1:$sim_port/v1"
    printf 'export SPARK_TRAINER_URL=%q\n' "http://127.0.0.1:$trainer_port"
    printf 'export SPARK_PROD_DATA=%q\n' "$data"
    ;;
  start|stop)
    case "$part" in
      postgres|temporal|s3|sandbox|workers) "${cmd}_$part" ;;
      worker-[0-9]*) if [ "$cmd" = start ]; then build_bundle; start_worker "${part#worker-}"; else stop_pid "$part" TERM; fi ;;
      *) die "usage: profile.sh $cmd postgres|temporal|s3|sandbox|workers|worker-N" ;;
    esac
    ;;
  kill)
    case "$part" in worker-[0-9]*|temporal|s3|sim|trainer) stop_pid "$part" KILL ;; *) die "usage: profile.sh kill worker-N|temporal|s3|sim|trainer" ;; esac
    ;;
  reset-data)
    stop_workers; stop_sandbox; stop_s3
    rm -rf "$data/s3" "$logs/trainer-events.jsonl"
    say "S3 data and sandbox logs deleted (Temporal's database kept)"
    ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
