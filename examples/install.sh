#!/usr/bin/env bash
# Builds the example services the tests run: the Python one's environment (examples/python/.venv, from
# uv.lock) and the Go binary (examples/go/.bin/spark-service, from go.mod/go.sum). Idempotent and quiet
# when done: each is redone only when its lockfiles or sources change (a hash kept beside it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

uv_cmd() {
  if command -v uv >/dev/null 2>&1; then uv "$@"
  elif [ -x "$HOME/.local/bin/uv" ]; then "$HOME/.local/bin/uv" "$@"
  else python3 -m uv "$@"
  fi
}

cd "$here/python"
wanted="$(cat uv.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if ! [ -x .venv/bin/python ] || [ "$(cat .venv/.installed 2>/dev/null)" != "$wanted" ]; then
  start=$(date +%s)
  if ! uv_cmd --version >/dev/null 2>&1; then
    echo "[examples/install] installing uv (pip)" >&2
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  fi
  uv_cmd sync --frozen --quiet
  echo "$wanted" > .venv/.installed
  echo "[examples/install] Python example ready in $(( $(date +%s) - start ))s (examples/python/.venv)" >&2
fi

cd "$here/go"
wanted="$(cat go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)"
if ! [ -x .bin/spark-service ] || [ "$(cat .bin/.built 2>/dev/null)" != "$wanted" ]; then
  start=$(date +%s)
  if ! command -v go >/dev/null 2>&1; then
    echo "[examples/install] go is not on PATH: the Go example's test needs it (https://go.dev/dl/)" >&2
    exit 1
  fi
  mkdir -p .bin
  # -mod=readonly: go.sum is the lockfile; a build never rewrites it.
  go build -mod=readonly -o .bin/spark-service .
  echo "$wanted" > .bin/.built
  echo "[examples/install] Go example built in $(( $(date +%s) - start ))s (examples/go/.bin/spark-service)" >&2
fi
