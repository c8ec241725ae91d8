#!/usr/bin/env bash
# The reference trainer's GPU checks (issue 21, item 8): dtypes, KL 0 at step 0, finite loss and
# gradient norm, CPU fp32 vs GPU bf16, an Inf gradient refused, and max_memory_allocated of one
# 4,096-token micro-batch on a random Qwen2.5-0.5B-shaped model. About 3-5 minutes on one H100.
#
#   bash trainer/gpu-check.sh                     # on a GPU machine (the system python3)
#   bash trainer/gpu-check.sh --device cpu --shape tiny   # every check that runs on a CPU, tiny model
#
# Needs torch (>= 2.6), transformers, peft, safetensors, tokenizers and pydantic importable by
# PYTHON (default python3); nothing is downloaded. Figures go to $OUT/results.json (default
# trainer/.gpu-check/). Exit status 1 when a check fails, 2 when the machine cannot run them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
# Extra packages carried next to the tree when the image lacks one (e.g. pydantic): trainer/.gpu-deps
[ -d "$here/.gpu-deps" ] && export PYTHONPATH="$PYTHONPATH:$here/.gpu-deps"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"

missing="$("$python" - <<'PY'
import importlib.util
need = ["torch", "transformers", "peft", "safetensors", "tokenizers", "pydantic"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)"
if [ -n "$missing" ]; then
  echo "[gpu-check] $python lacks: $missing (put them in $here/.gpu-deps or set PYTHON)" >&2
  exit 2
fi
"$python" -c 'import torch, transformers, peft; print(f"[gpu-check] torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, peft {peft.__version__}, GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else None}")'
exec "$python" "$here/bench/gpu_check.py" "$@"
