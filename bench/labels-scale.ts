/**
 * Stage-1 scale benchmark on the local stack and the sandbox:
 *
 *   npx tsx bench/labels-scale.ts [--problems 2000] [--solutions 8] [--verifications 16]
 *     [--shard-size 100] [--shard-concurrency 4] [--in-flight 8]
 *
 * Runs `synthesizeLabels` with a worker in its own process (so its memory is its own) against
 * fresh seeds (nothing cached), then prints one table: wall time, requests and samples per
 * second, the sandbox's capacity and observed peak concurrency, every workflow history's size
 * against Temporal's limits, and the worker's peak resident memory.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { RequestLogEntry } from '../sandbox/model-server/requestLog.js';
import { peakConcurrency } from '../sandbox/model-server/requestLog.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../src/workflows/index.js';
import { shardName } from '../src/spark/labels/labels.js';
import { repoRoot } from '../src/cli/local-stack.js';
import { sandboxDataset, withSandboxWorker } from '../sandbox/sandbox-worker.js';

const { values: args } = parseArgs({
  options: {
    problems: { type: 'string', default: '2000' },
    solutions: { type: 'string', default: '8' },
    verifications: { type: 'string', default: '16' },
    'shard-size': { type: 'string', default: '100' },
    'shard-concurrency': { type: 'string', default: '4' },
    'in-flight': { type: 'string', default: '8' },
  },
});
const N = Number(args.problems);
const M = Number(args.solutions);
const K = Number(args.verifications);
const TASK_QUEUE = 'bench-labels-scale';
// Temporal's default limits: 51,200 events or 50 MiB per workflow history.
const EVENT_LIMIT = 51_200;
const BYTES_LIMIT = 50 * 1024 * 1024;

/** Starts `src/workers/main.ts` as its own process and waits for its ready line. */
async function startWorkerProcess(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/workers/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, ...env, SPARK_TASK_QUEUE: TASK_QUEUE },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"worker-ready"')) resolve();
    });
  });
  return child;
}

/** A memory figure of a process from /proc (VmHWM: peak so far; VmRSS: now), in MiB. */
function memMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const kb = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1024;
}


await withSandboxWorker(`${TASK_QUEUE}-unused`, async ({ client, store, stack }) => {
  const sim = stack.simBaseURL.replace(/\/v1$/, '');
  const simConfig = await (await fetch(`${sim}/sim/config`)).json() as { maxConcurrent: number; latency: { medianMs: number; perSampleMs: number } };
  await fetch(`${sim}/sim/log/reset`, { method: 'POST' });
  const dataset = await sandboxDataset(store, { seed: 99, count: N });
  const worker = await startWorkerProcess({});
  // VmHWM includes start-up (bundling the workflow code); the peak while labelling is sampled.
  const startupPeak = memMiB(worker.pid!, 'VmHWM');
  let runPeak = 0;
  const sampler = setInterval(() => (runPeak = Math.max(runPeak, memMiB(worker.pid!, 'VmRSS'))), 500);
  const seed = Date.now() % 1_000_000; // fresh samples: nothing of an earlier run is reused
  const runName = `scale-${N}x${M}x${K}-${seed}`;
  const workflowId = `spark/${runName}/synthesize-labels`;
  const started = Date.now();
  try {
    const handle = await client.workflow.start(synthesizeLabels, {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [{
        runName,
        dataset: { uri: dataset.uri },
        generator: { endpoint: { baseURL: stack.simBaseURL }, model: 'sim-policy', sampling: { temperature: 1 } },
        verifier: { endpoint: { baseURL: stack.simBaseURL }, model: 'sim-verifier' },
        solutionsPerProblem: M,
        verificationsPerSolution: K,
        seed,
        shards: { size: Number(args['shard-size']), concurrency: Number(args['shard-concurrency']), problemsInFlight: Number(args['in-flight']) },
      }],
    });
    const timer = setInterval(() => {
      handle.query(synthesizeLabelsProgress).then((p) => console.error(
        `[bench] ${((Date.now() - started) / 1000).toFixed(0)} s: problems ${p.counts.problems}/${p.problemsTotal}, shards ${p.shardsDone}/${p.shardsTotal}, `
        + `requests ${p.counts.callsMade}, worker RSS ${memMiB(worker.pid!, 'VmRSS').toFixed(0)} MiB`,
      )).catch(() => undefined);
    }, 15_000);
    const result = await handle.result().finally(() => clearInterval(timer));
    const wallS = (Date.now() - started) / 1000;
    clearInterval(sampler);

    const histories: { name: string; events: number; bytes: number }[] = [];
    for await (const run of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
      const d = await client.workflow.getHandle(workflowId, run.runId).describe();
      histories.push({ name: `parent run ${run.runId.slice(0, 8)}`, events: d.historyLength ?? 0, bytes: d.historySize ?? 0 });
    }
    const shards = Math.ceil(N / Number(args['shard-size']));
    for (let s = 0; s < shards; s++) {
      const d = await client.workflow.getHandle(`${workflowId}/shard-${shardName(s)}`).describe();
      histories.push({ name: `shard ${s}`, events: d.historyLength ?? 0, bytes: d.historySize ?? 0 });
    }
    const log = (await (await fetch(`${sim}/sim/log`)).json()) as { entries: RequestLogEntry[] };
    const ok = log.entries.filter((e) => e.status === 200);
    const samples = ok.reduce((n, e) => n + e.n, 0);
    const maxShard = histories.filter((h) => h.name.startsWith('shard')).reduce((a, b) => (b.events > a.events ? b : a));
    const parents = histories.filter((h) => h.name.startsWith('parent'));

    const rows: [string, string][] = [
      ['problems × solutions × verifications', `${N} × ${M} × ${K}`],
      ['wall time', `${wallS.toFixed(1)} s`],
      ['requests to the sandbox (200s)', `${ok.length} (${(ok.length / wallS).toFixed(1)}/s)`],
      ['samples generated', `${samples} (${(samples / wallS).toFixed(0)}/s)`],
      ['labels lines', `${result.lines}`],
      ['parse failures / stored calls counted', `${result.counts.parseFailures} / ${result.counts.callsMade}`],
      ['sandbox capacity', `maxConcurrent ${simConfig.maxConcurrent}, median ${simConfig.latency.medianMs} ms + ${simConfig.latency.perSampleMs} ms/sample`],
      ['sandbox peak concurrency observed', `${peakConcurrency(log.entries)}`],
      ['parent runs (continue-as-new)', `${parents.length}; largest ${Math.max(...parents.map((p) => p.events))} events`],
      ['largest shard history', `${maxShard.events} events, ${(maxShard.bytes / 1024).toFixed(0)} KiB (${((100 * maxShard.events) / EVENT_LIMIT).toFixed(1)}% / ${((100 * maxShard.bytes) / BYTES_LIMIT).toFixed(2)}% of limits)`],
      ['all histories', `${histories.length} workflows, ${histories.reduce((n, h) => n + h.events, 0)} events`],
      ['worker peak RSS while labelling', `${runPeak.toFixed(0)} MiB (start-up peak ${startupPeak.toFixed(0)} MiB, bundling workflows)`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'));
  } finally {
    clearInterval(sampler);
    worker.kill('SIGTERM');
  }
});
