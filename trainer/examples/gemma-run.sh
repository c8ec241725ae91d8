#!/usr/bin/env bash
# A real-model run on one machine: SPARK stage 1 on GSM8K questions with Gemma 3 270M as generator and
# verifier, a few trainPrm steps, then a few rlTrain steps; real
# PyTorch training through trainer protocol v1, rollouts from the development model server.
#
#   bash trainer/examples/gemma-run.sh [RUN_NAME]
#
# Needs ~10 GB of RAM once (the GGUF is dequantised when it is first converted). Sizes are set for a
# 2-core CPU; on a GPU host, point the endpoints at vLLM instead and raise them (README: "On GPUs").
# Env knobs: QUESTIONS (4), SOLUTIONS (4), VERIFICATIONS (4), MAX_TOKENS (256), PRM_STEPS_BATCH (4),
# RL_STEPS (2), REWARD (verifiable | prm).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
run="${1:-gemma-$(date +%s)}"
model_dir="$root/.models/gemma-3-270m"
model_port="${GEMMA_MODEL_PORT:-8510}"
trainer_port="${GEMMA_TRAINER_PORT:-8520}"
questions="${QUESTIONS:-4}" solutions="${SOLUTIONS:-4}" verifications="${VERIFICATIONS:-4}"
max_tokens="${MAX_TOKENS:-256}" prm_batch="${PRM_STEPS_BATCH:-4}" rl_steps="${RL_STEPS:-2}"
logs="$root/.data/logs/$run"
mkdir -p "$logs"

bash scripts/setup.sh
python="$root/trainer/.venv/bin/python"
"$python" -m spark_trainer prepare-gemma "$model_dir" --accept-gemma-terms
npx tsx src/cli/stack.ts up >/dev/null
eval "$(npx tsx -e "import { localStackEnv } from './src/cli/local-stack.ts'; for (const [k, v] of Object.entries(localStackEnv())) console.log('export ' + k + '=' + JSON.stringify(v));")"
spark() { npx tsx src/cli/spark.ts "$@"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_http() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 1; done; echo "no answer from $1" >&2; exit 1; }

"$python" -m spark_trainer serve-model --port "$model_port" --model "gemma-3-270m=$model_dir" >"$logs/model-server.log" 2>&1 &
pids+=($!)
"$python" -m spark_trainer serve --port "$trainer_port" --model "gemma-3-270m=$model_dir" \
  --publish-dir "$root/.data/publish" >"$logs/trainer.log" 2>&1 &
pids+=($!)
queue="gemma-$run"
spark worker --task-queue "$queue" >"$logs/worker.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$model_port/v1/models"
wait_http "http://127.0.0.1:$trainer_port/health"

endpoint="{\"baseURL\": \"http://127.0.0.1:$model_port/v1\", \"timeoutMs\": 1800000}"
gsm8k="$(cd "$root/../shared/datasets/gsm8k" && pwd)/test.jsonl"
sampling="{\"temperature\": 0.8, \"topP\": 0.95, \"maxTokens\": $max_tokens}"

echo "[gemma-run] stage 1: $questions GSM8K questions x $solutions solutions x $verifications verifications" >&2
start=$(date +%s)
spark start synthesizeLabels --task-queue "$queue" --wait --json --config - >"$logs/labels.json" <<JSON
{ "runName": "$run",
  "dataset": { "uri": "$gsm8k", "fields": { "question": "question", "answer": "answer" }, "limit": $questions },
  "generator": { "endpoint": $endpoint, "model": "gemma-3-270m", "sampling": $sampling, "maxInFlight": 2 },
  "verifier": { "endpoint": $endpoint, "model": "gemma-3-270m", "sampling": $sampling, "maxInFlight": 2 },
  "solutionsPerProblem": $solutions, "verificationsPerSolution": $verifications,
  "methods": ["single", "outcome-majority", "step-majority"], "parseRetries": 1, "seed": 1 }
JSON
echo "[gemma-run] stage 1 took $(( $(date +%s) - start ))s" >&2

labels_run="$run"
valid=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$logs/labels.json','utf8')).result.counts.verificationsValid)")
if [ "$valid" = "0" ]; then
  # A base model answers no verification in the verifier's format, so its own labels are empty and
  # trainPrm would refuse them. The PRM is then fine-tuned on labels the sandbox's models wrote: the
  # training (tokens, LoRA, checkpoints, publish) is Gemma's all the same.
  echo "[gemma-run] no verification of Gemma's was readable: stage 2 trains on sandbox labels" >&2
  labels_run="$run-sandbox-labels"
  problems="$root/.data/$labels_run.jsonl"
  npx tsx -e "import { generateProblems } from './sandbox/arith.ts'; import { writeFileSync } from 'node:fs';
    writeFileSync('$problems', generateProblems({ seed: 7, count: 6 }).map((p) => JSON.stringify({ id: p.id, question: p.question })).join('\\n') + '\\n');"
  sim="{\"baseURL\": \"http://127.0.0.1:${SPARK_SIM_PORT:-8300}/v1\"}"
  spark start synthesizeLabels --task-queue "$queue" --wait --json --config - >"$logs/sandbox-labels.json" <<JSON
{ "runName": "$labels_run", "dataset": { "uri": "$problems" },
  "generator": { "endpoint": $sim, "model": "sim-policy" }, "verifier": { "endpoint": $sim, "model": "sim-verifier" },
  "solutionsPerProblem": 2, "verificationsPerSolution": 4, "methods": ["step-majority"], "seed": 1 }
JSON
fi

echo "[gemma-run] stage 2: trainPrm (LoRA rank 8), published to the model server" >&2
start=$(date +%s)
spark start trainPrm --task-queue "$queue" --wait --json --config - >"$logs/train-prm.json" <<JSON
{ "runName": "$run",
  "labelsManifestUri": "s3://$SPARK_S3_BUCKET/runs/$labels_run/labels/manifest.json",
  "trainer": { "baseURL": "http://127.0.0.1:$trainer_port" },
  "baseModel": "gemma-3-270m",
  "adapter": { "kind": "lora", "rank": 8, "alpha": 16, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"] },
  "optimizer": { "name": "adamw", "learningRate": 1e-4, "betas": [0.9, 0.999], "weightDecay": 0, "warmupSteps": 1, "maxGradNorm": 1 },
  "epochs": 1, "batchSize": $prm_batch, "checkpointEvery": 2,
  "publish": { "inferenceBaseURL": "http://127.0.0.1:$model_port/v1" }, "seed": 1 }
JSON
echo "[gemma-run] stage 2 took $(( $(date +%s) - start ))s" >&2

# The verifiable reward (format gate, then the boxed answer against GSM8K's) keeps a step to two
# model calls on CPU; REWARD=prm scores rollouts with the PRM just trained instead.
if [ "${REWARD:-verifiable}" = "prm" ]; then
  reward="{ \"formulation\": \"selective-advantage\", \"prm\": { \"endpoint\": $endpoint, \"model\": \"$run-prm\", \"style\": \"prm-cot\", \"maxTokens\": $max_tokens } }"
else
  reward='{ "formulation": "verifiable" }'
fi
echo "[gemma-run] stage 3: rlTrain, $rl_steps GRPO steps (reward: ${REWARD:-verifiable})" >&2
start=$(date +%s)
spark start rlTrain --task-queue "$queue" --wait --json --config - >"$logs/rl-train.json" <<JSON
{ "runName": "$run",
  "policy": { "baseModel": "gemma-3-270m", "endpoint": $endpoint, "model": "gemma-3-270m", "sampling": { "temperature": 1, "topP": 1, "maxTokens": $max_tokens },
              "adapter": { "kind": "lora", "rank": 8, "alpha": 16, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"] } },
  "trainer": { "baseURL": "http://127.0.0.1:$trainer_port" },
  "reward": $reward,
  "dataset": { "uri": "$gsm8k", "fields": { "question": "question", "answer": "answer" }, "offset": 100, "limit": 16 },
  "grpo": { "batchSize": 2, "groupSize": 4 },
  "totalSteps": $rl_steps, "checkpointEvery": 1, "publishEvery": 1, "seed": 1 }
JSON
echo "[gemma-run] stage 3 took $(( $(date +%s) - start ))s" >&2
echo "[gemma-run] outputs: $logs (labels.json, train-prm.json, rl-train.json), S3 prefix s3://$SPARK_S3_BUCKET/runs/$run/" >&2
