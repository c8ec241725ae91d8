/**
 * Stage 1 against the speed of the model server, in one invocation and on one load server:
 *
 *   npx tsx bench/stage1-speed.ts [--problems 200] [--solutions 8] [--verifications 16]
 *     [--latency-ms 50] [--slots 64] [--workers 1,2] [--repeat 1] [--profile DIR]
 *
 * (c) the server's capacity: slots ÷ latency, the most any client can get;
 * (b) a plain async driver (`bench/plain-driver.ts`): `n` per request, no durability;
 * (a) `synthesizeLabels` through Temporal on the local stack, once per worker-process count
 *     in `--workers`, each in a bucket of its own (so nothing is reused and its objects can be
 *     counted) with a fresh seed.
 * The load server (`bench/load-server.ts`) has a fixed latency and a fixed number of slots and
 * makes its answers for next to nothing. Each driver runs in its own process; CPU seconds and
 * peak RSS are that process's (for (a), summed over worker processes and the largest one),
 * and the local stack's CPU (the Temporal dev server, versitygw) and the load server's are shown beside them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { REQUEST_PREFIX } from '../src/core/inference/sample-store.js';
import { ObjectStore, s3ConfigFromEnv } from '../src/core/store/s3-store.js';
import { generateProblems } from '../sandbox/arith.js';
import { shardName } from '../src/spark/labels/labels.js';
import { localStackEnv, localStackSettings, repoRoot, stackUp } from '../src/cli/local-stack.js';
import { workflowsPath } from '../src/workers/create-worker.js';
import { synthesizeLabels } from '../src/workflows/index.js';

const { values: args } = parseArgs({
  options: {
    problems: { type: 'string', default: '200' },
    solutions: { type: 'string', default: '8' },
    verifications: { type: 'string', default: '16' },
    'latency-ms': { type: 'string', default: '50' },
    slots: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1,2' },
    /** Runs (b) and each (a) this many times, alternating, and reports each one's median run (by wall time). */
    repeat: { type: 'string', default: '1' },
    /** Extra node flags for the worker processes, e.g. "--max-semi-space-size=32". */
    'worker-node-args': { type: 'string', default: '' },
    /** Keep each (a) run's bucket (default: emptied and removed once counted). */
    'keep-buckets': { type: 'boolean', default: false },
    /** Overrides of `shards` (size, concurrency, problemsInFlight) as JSON; default the workflow's defaults. */
    shards: { type: 'string' },
    /** Write V8 CPU profiles of the drivers (plain driver, worker processes) into this folder. */
    profile: { type: 'string' },
  },
});
const N = Number(args.problems);
const M = Number(args.solutions);
const K = Number(args.verifications);
const latencyMs = Number(args['latency-ms']);
const slots = Number(args.slots);
const workerCounts = args.workers.split(',').map(Number);
const log = (msg: string) => console.error(`[bench] ${msg}`);

/** One row of the table. */
interface Row {
  name: string;
  wallS: number;
  requests: number;
  samples: number;
  objects?: number;
  bytes?: number;
  sampleObjects?: number;
  cpuS?: number;
  peakRssMiB?: number;
  temporalCpuS?: number;
  s3CpuS?: number;
  serverCpuS?: number;
  historyEvents?: { max: number; mean: number };
}

/** Runs a TypeScript entry of the repo as its own process; resolves with it once a stdout line contains `marker`. */
function spawnEntry(entry: string, argv: string[], env: Record<string, string>, marker: string, profile = false, nodeArgs: string[] = []): Promise<{ child: ChildProcess; line: string }> {
  const profiling = profile && args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
  const child = spawn(process.execPath, [...profiling, ...nodeArgs, '--import', 'tsx', join(repoRoot, entry), ...argv], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${entry} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes(marker)) resolve({ child, line });
    });
  });
}

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident memory of a process so far, in MiB. */
function peakRssMiB(pid: number): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** CPU seconds of a local-stack process (`temporal`, `s3`) by the pid file `stackUp` writes; 0 when unknown. */
function stackCpu(name: 'temporal' | 's3'): number {
  try {
    return cpuSeconds(Number(readFileSync(join(localStackSettings().dataDir, 'run', `${name}.pid`), 'utf8')));
  } catch {
    return 0;
  }
}

async function serverStats(url: string): Promise<{ requests: number; samples: number; peak: number; cpuSeconds: number }> {
  return (await fetch(url.replace(/\/v1$/, '/stats'))).json() as never;
}

/** Objects and bytes in a bucket, and how many of them are sample-store requests. */
async function bucketContents(s3: S3Client, bucket: string): Promise<{ objects: number; bytes: number; sampleObjects: number }> {
  let objects = 0;
  let bytes = 0;
  let sampleObjects = 0;
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of out.Contents ?? []) {
      objects += 1;
      bytes += o.Size ?? 0;
      if (o.Key?.startsWith(`${REQUEST_PREFIX}/`)) sampleObjects += 1;
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return { objects, bytes, sampleObjects };
}

/** Empties and removes a bucket, a thousand keys per request. */
async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
    const keys = (out.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

const stack = await stackUp(log);
Object.assign(process.env, localStackEnv());
const s3Config = s3ConfigFromEnv();
const s3 = new S3Client({
  endpoint: s3Config.endpoint, region: s3Config.region, forcePathStyle: s3Config.forcePathStyle,
  credentials: { accessKeyId: s3Config.accessKeyId!, secretAccessKey: s3Config.secretAccessKey! },
});
const work = mkdtempSync(join(tmpdir(), 'stage1-speed-'));
const bundlePath = join(work, 'workflow-bundle.js');
writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never })).code);
const problems = generateProblems({ seed: 99, count: N }).map((p) => JSON.stringify({ id: p.id, question: p.question })).join('\n') + '\n';
const problemsFile = join(work, 'problems.jsonl');
writeFileSync(problemsFile, problems);

const server = await spawnEntry('bench/load-server.ts', ['--latency-ms', String(latencyMs), '--slots', String(slots)], {}, '"url"');
const baseURL = (JSON.parse(server.line) as { url: string }).url;
const connection = await Connection.connect({ address: stack.temporalAddress });
const client = new Client({ connection });
const rows: Row[] = [];
const baseRunId = (Date.now() % 1_000_000) * 10;
const repeat = Number(args.repeat);

try {
  // (c) The server's capacity: every slot busy all the time.
  const requestsPerProblem = 1 + M;
  const samplesPerProblem = M + M * K;
  const capacity = slots / (latencyMs / 1000);
  rows.push({ name: '(c) server capacity', wallS: (N * requestsPerProblem) / capacity, requests: N * requestsPerProblem, samples: N * samplesPerProblem });

  for (let rep = 0; rep < repeat; rep++) {
    const runId = baseRunId + rep;
    // (b) The plain async driver.
    log(`(b) plain driver: ${N} × ${M} × ${K}`);
    let before = await serverStats(baseURL);
    const plain = await spawnEntry('bench/plain-driver.ts', ['--base-url', baseURL, '--problems', problemsFile, '--solutions', String(M), '--verifications', String(K), '--seed', String(runId)], {}, '"wallS"', true);
    const b = JSON.parse(plain.line) as { wallS: number; requests: number; samples: number; cpuSeconds: number; peakRssMiB: number };
    let after = await serverStats(baseURL);
    rows.push({ name: '(b) plain async driver', wallS: b.wallS, requests: b.requests, samples: b.samples, cpuS: b.cpuSeconds, peakRssMiB: b.peakRssMiB, serverCpuS: after.cpuSeconds - before.cpuSeconds, objects: 0, bytes: 0, sampleObjects: 0 });

    // (a) synthesizeLabels through Temporal, with 1, 2, … worker processes.
    for (const count of workerCounts) {
      const bucket = `bench-stage1-${runId}-w${count}`;
      const store = new ObjectStore({ ...s3Config, bucket });
      await store.ensureBucket();
      const dataset = await store.put('datasets/problems.jsonl', problems, 'application/x-ndjson');
      const taskQueue = `bench-stage1-${runId}-w${count}`;
      const env = { ...localStackEnv(), SPARK_S3_BUCKET: bucket, SPARK_TASK_QUEUE: taskQueue, SPARK_WORKFLOW_BUNDLE: bundlePath };
      const workers = await Promise.all(Array.from({ length: count }, () => spawnEntry('src/workers/main.ts', [], env, '"worker-ready"', true, args['worker-node-args'].split(' ').filter(Boolean))));
      const pids = workers.map((w) => w.child.pid!);
      const cpuBefore = pids.map(cpuSeconds);
      const temporalBefore = stackCpu('temporal');
      const s3Before = stackCpu('s3');
      await fetch(baseURL.replace(/\/v1$/, '/reset'), { method: 'POST' });
      before = await serverStats(baseURL);
      const runName = `bench-stage1-${runId}-w${count}`;
      const workflowId = `spark/${runName}/synthesize-labels`;
      log(`(a) synthesizeLabels with ${count} worker process(es): ${workflowId}`);
      const started = Date.now();
      const result = await client.workflow.execute(synthesizeLabels, {
        taskQueue,
        workflowId,
        args: [{
          runName,
          dataset: { uri: dataset.uri },
          generator: { endpoint: { baseURL }, model: 'gen', sampling: { temperature: 1 } },
          verifier: { endpoint: { baseURL }, model: 'ver' },
          solutionsPerProblem: M,
          verificationsPerSolution: K,
          seed: runId,
          ...(args.shards ? { shards: JSON.parse(args.shards) as never } : {}),
        }],
      });
      const wallS = (Date.now() - started) / 1000;
      after = await serverStats(baseURL);
      const cpuS = pids.reduce((s, pid, i) => s + cpuSeconds(pid) - cpuBefore[i]!, 0);
      const temporalCpuS = stackCpu('temporal') - temporalBefore;
      const s3CpuS = stackCpu('s3') - s3Before;
      const peak = Math.max(...pids.map(peakRssMiB));
      const shards = Math.ceil(N / 100);
      const events: number[] = [];
      for (let s = 0; s < shards; s++) events.push((await client.workflow.getHandle(`${workflowId}/shard-${shardName(s)}`).describe()).historyLength ?? 0);
      const contents = await bucketContents(s3, bucket);
      rows.push({
        name: `(a) synthesizeLabels, ${count} worker${count > 1 ? 's' : ''}`,
        wallS,
        requests: after.requests - before.requests,
        samples: after.samples - before.samples,
        ...contents,
        cpuS,
        peakRssMiB: peak,
        temporalCpuS,
        s3CpuS,
        serverCpuS: after.cpuSeconds - before.cpuSeconds,
        historyEvents: { max: Math.max(...events), mean: events.reduce((x, y) => x + y, 0) / events.length },
      });
      log(`(a) ${count} worker(s): ${wallS.toFixed(1)} s, server peak concurrency ${after.peak}`);
      if (result.counts.callsMade !== after.requests - before.requests) log(`note: the run counted ${result.counts.callsMade} calls, the server ${after.requests - before.requests}`);
      await Promise.all(workers.map((w) => new Promise((resolve) => {
        w.child.once('exit', resolve);
        w.child.kill('SIGTERM');
      })));
      store.destroy();
      if (!args['keep-buckets']) await removeBucket(s3, bucket).catch((err: unknown) => log(`could not remove ${bucket}: ${(err as Error).message}`));
    }
  }
} finally {
  server.child.kill('SIGTERM');
  await connection.close();
  s3.destroy();
}

// Each row's median run (by wall time) across the repetitions.
const byName = new Map<string, Row[]>();
for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
const medians = [...byName.values()].map((runs) => [...runs].sort((x, y) => x.wallS - y.wallS)[Math.floor((runs.length - 1) / 2)]!);
rows.splice(0, rows.length, ...medians);
const plainRow = rows.find((r) => r.name.startsWith('(b)'))!;
const capacityRow = rows.find((r) => r.name.startsWith('(c)'))!;
const perK = (v: number | undefined) => (v === undefined ? '' : (v * 1000) / N);
const fmt = (v: number | string | undefined, digits = 0) => (v === undefined || v === '' ? '–' : typeof v === 'string' ? v : v.toFixed(digits));
const header = ['run', 'wall s', 'requests/s', 'samples/s', '÷ (b)', '÷ (c)', 'S3 objects /1k problems', 'S3 MiB /1k problems', 'sample objects /request', 'driver CPU s', 'driver CPU ms /request', 'driver peak RSS MiB', 'Temporal CPU s', 'S3 CPU s', 'load server CPU s', 'history events /shard (max)'];
const table = rows.map((r) => [
  r.name,
  fmt(r.wallS, 1),
  fmt(r.requests / r.wallS, 0),
  fmt(r.samples / r.wallS, 0),
  fmt((r.samples / r.wallS) / (plainRow.samples / plainRow.wallS), 2),
  fmt((r.samples / r.wallS) / (capacityRow.samples / capacityRow.wallS), 2),
  fmt(perK(r.objects), 0),
  fmt(r.bytes === undefined ? undefined : (perK(r.bytes) as number) / 2 ** 20, 1),
  fmt(r.sampleObjects === undefined || r.requests === 0 ? undefined : r.sampleObjects / r.requests, 2),
  fmt(r.cpuS, 1),
  fmt(r.cpuS === undefined || r.requests === 0 ? undefined : (r.cpuS * 1000) / r.requests, 2),
  fmt(r.peakRssMiB, 0),
  fmt(r.temporalCpuS, 1),
  fmt(r.s3CpuS, 1),
  fmt(r.serverCpuS, 1),
  r.historyEvents ? `${r.historyEvents.max}` : '–',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(`\nstage 1: ${N} problems × ${M} solutions × ${K} verifications; load server ${latencyMs} ms, ${slots} slots${repeat > 1 ? `; median of ${repeat} runs each` : ''}`);
if (repeat > 1) for (const [name, runs] of byName) if (runs.length > 1) console.log(`  ${name}: wall ${runs.map((r) => r.wallS.toFixed(1)).join(', ')} s`);
console.log(line(header));
console.log(`|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const row of table) console.log(line(row));
// Every process of a run shares this machine's cores: their CPU seconds together bound its wall time.
const cores = availableParallelism();
for (const r of rows) {
  if (r.cpuS === undefined) continue;
  const allCpu = r.cpuS + (r.temporalCpuS ?? 0) + (r.s3CpuS ?? 0) + (r.serverCpuS ?? 0);
  const floor = allCpu / cores;
  console.log(`  ${r.name}: ${allCpu.toFixed(1)} CPU s in all processes; on ${cores} cores no less than ${floor.toFixed(1)} s wall${r === plainRow ? '' : `, so ÷ (b) ≤ ${(plainRow.wallS / floor).toFixed(2)} here`}`);
}
