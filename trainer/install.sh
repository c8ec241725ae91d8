#!/usr/bin/env bash
# Installs the trainer's Python environment (trainer/.venv) exactly as uv.lock pins it, with the
# dev tools (pytest, ruff). Idempotent and quiet when already done; installs uv first if missing.
# PyTorch from PyPI brings its CUDA wheels (about 3 GB): the first run takes a minute or two.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

stamp=.venv/.installed
wanted="$(cat uv.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then exit 0; fi

start=$(date +%s)
uv_cmd() {
  if command -v uv >/dev/null 2>&1; then uv "$@"
  elif [ -x "$HOME/.local/bin/uv" ]; then "$HOME/.local/bin/uv" "$@"
  else python3 -m uv "$@"
  fi
}
if ! uv_cmd --version >/dev/null 2>&1; then
  echo "[trainer/install] installing uv (pip)" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
echo "[trainer/install] installing the trainer's Python environment from uv.lock (first time: PyTorch, ~3 GB)" >&2
# --inexact: extras installed on request (the gemma model) stay.
uv_cmd sync --frozen --inexact --quiet
echo "$wanted" > "$stamp"
echo "[trainer/install] ready in $(( $(date +%s) - start ))s (trainer/.venv)" >&2
