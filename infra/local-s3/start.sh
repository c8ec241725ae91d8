#!/usr/bin/env bash
# Starts versitygw (S3 over a local folder) in the background unless it already answers,
# and creates the bucket. Data in .data/s3, log in .data/logs. Prints nothing else on success.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.tools/bin/versitygw"
port="${SPARK_S3_PORT:-7070}"
data="${SPARK_DATA_DIR:-$root/.data}"
export ROOT_ACCESS_KEY="${AWS_ACCESS_KEY_ID:-sparklocal}"
export ROOT_SECRET_KEY="${AWS_SECRET_ACCESS_KEY:-sparklocalsecret}"
mkdir -p "$data/s3/data" "$data/s3/meta" "$data/logs" "$data/run"

[ -x "$bin" ] || bash "$(dirname "$0")/install.sh"

up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" ; }
if ! up; then
  # --keep-alive: versitygw closes every connection after one request otherwise, and a
  # connection per object is most of a busy worker's S3 cost.
  nohup "$bin" --port "127.0.0.1:$port" --keep-alive posix --sidecar "$data/s3/meta" "$data/s3/data" >>"$data/logs/s3.log" 2>&1 &
  echo $! > "$data/run/s3.pid"
  for _ in $(seq 1 60); do up && break; sleep 0.25; done
  up || { echo "[local-s3/start] versitygw did not start; see $data/logs/s3.log" >&2; exit 1; }
fi
# Create the bucket through the S3 API (signed with curl's SigV4); "already owned" is fine.
bucket="${SPARK_S3_BUCKET:-spark}"
code=$(curl -s -o /dev/null -w "%{http_code}" -X PUT -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" --aws-sigv4 "aws:amz:${SPARK_S3_REGION:-us-east-1}:s3" \
  --user "$ROOT_ACCESS_KEY:$ROOT_SECRET_KEY" "http://127.0.0.1:$port/$bucket")
case "$code" in 200|409) ;; *) echo "[local-s3/start] creating bucket $bucket failed (HTTP $code)" >&2; exit 1;; esac
echo "[local-s3/start] S3 on http://127.0.0.1:$port bucket ${SPARK_S3_BUCKET:-spark}" >&2
