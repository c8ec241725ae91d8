/**
 * The fault test on the production profile (infra/production/profile.sh): the Temporal server on
 * PostgreSQL with SQL visibility, versitygw, the sandbox model server and trainer, and two worker
 * processes (src/workers/main.ts) on one task queue.
 *
 * 1. Reference: a `sparkPipeline` run (stage 1 → trainPrm → evaluatePrm → rlTrain) with nothing
 *    disturbed; its outputs (every object under runs/<run>/, hashed), the sample store's keys, the
 *    sandbox trainer's applied steps and the model server's paid requests are recorded.
 * 2. The S3 data and the sandbox are reset (fresh model server and trainer, empty bucket, workers
 *    restarted) and the same input runs again under the same workflow ID, with faults:
 *    SIGKILL of one worker mid-stage-1 (it is restarted 5 s later, as a Deployment would),
 *    S3 stopped for 30 s once stage 2 runs, the Temporal server restarted mid-stage-3.
 * Checks: the run completes; every output object has the same bytes as the reference's; the
 * same requests were stored; no train step was applied twice (and the same steps were applied);
 * model requests paid twice are at most those in flight at the faults; the runs are found by their
 * search attributes through SQL visibility.
 *
 * Run with `npm run test:production` (installs and brings up the profile first). Measured results
 * are written to .data/production/fault-test/result.json and printed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStore, SparkClient, s3ConfigFromEnv } from '../../src/client/index.js';
import type { SparkHandle, SparkInput } from '../../src/client/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const profileScript = join(root, 'infra/production/profile.sh');
const fixtures = join(root, 'test/production/fixtures');
const RUN = 'prod-fault';
const WORKFLOW_ID = `spark/${RUN}/pipeline`;
const RL_STEPS = 6;
/** The sandbox server's knobs in both runs: slow enough that each fault lands inside its stage. */
const SIM_KNOBS = { latency: { medianMs: 150, sigma: 0.3, perSampleMs: 5 }, maxConcurrent: 2 };
const S3_OUTAGE_MS = 30_000;

const execFileAsync = promisify(execFile);
/** profile.sh, waiting for it (its own progress lines go to the test's stderr). */
function profile(...args: string[]): string {
  return execFileSync('bash', [profileScript, ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}
async function profileAsync(...args: string[]): Promise<void> {
  const { stderr } = await execFileAsync('bash', [profileScript, ...args], { cwd: root, encoding: 'utf8' });
  if (stderr) process.stderr.write(stderr);
}

/** The environment a client of the profile needs, from `profile.sh env`. */
function profileEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of profile('env').split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

const env = profileEnv();
const simURL = env.SPARK_SIM_URL!;
const simAdmin = simURL.replace(/\/v1$/, '');
const trainerURL = env.SPARK_TRAINER_URL!;
const dataDir = env.SPARK_PROD_DATA!;
const resultDir = join(dataDir, 'fault-test');
const started = Date.now();
const t = () => Math.round((Date.now() - started) / 100) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[fault-test +${t()}s] ${msg}\n`);

interface SimLogEntry { key: string; status: number; fault?: string; role: string; model: string }
interface SimLog { entries: SimLogEntry[]; inFlight: number; queued: number }
async function simLog(): Promise<SimLog> {
  const res = await fetch(`${simAdmin}/sim/log`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as SimLog;
}
const paid = (e: SimLogEntry) => e.status === 200 && !e.fault;

interface TrainerEvent { event: string; session?: string; step?: number; applied?: boolean; pid: number }
function trainerEvents(): TrainerEvent[] {
  const file = join(dataDir, 'logs/trainer-events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TrainerEvent);
}
/** Steps the trainer applied, as `<session without its run ID>#<step>`. */
const appliedSteps = (events: TrainerEvent[]) => events.filter((e) => e.applied === true).map((e) => `${sessionName(e.session)}#${e.step}`);

function newStore(): ObjectStore {
  return new ObjectStore(s3ConfigFromEnv({ ...process.env, ...env }));
}

/**
 * Fresh S3 data and sandbox, workers restarted; the fixtures uploaded; the sandbox slowed down.
 * The test's S3 client is made anew: its kept-alive sockets went with the S3 process.
 */
async function freshSandbox() {
  profile('reset-data');
  profile('start', 's3');
  profile('start', 'sandbox');
  profile('start', 'workers');
  store?.destroy();
  store = newStore();
  const put = async (name: string) => (await store.put(`datasets/production-fault/${name}`, readFileSync(join(fixtures, name)), 'application/x-ndjson')).uri;
  const uris = {
    problems: await put('problems.jsonl'),
    prompts: await put('prompts.jsonl'),
    heldOut: await put('held-out.jsonl'),
    splits: { gsm8k: await put('processbench-gsm8k.jsonl'), math: await put('processbench-math.jsonl') },
  };
  const res = await fetch(`${simAdmin}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SIM_KNOBS) });
  expect(res.ok).toBe(true);
  return uris;
}

function pipelineInput(uris: Awaited<ReturnType<typeof freshSandbox>>): SparkInput<'sparkPipeline'> {
  const fields = { question: 'question', answer: 'answer' };
  return {
    runName: RUN,
    endpoints: { inference: { baseURL: simURL }, trainer: { baseURL: trainerURL } },
    labels: {
      dataset: { uri: uris.problems },
      generator: { model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { model: 'sim-verifier' },
      solutionsPerProblem: 4,
      verificationsPerSolution: 4,
      methods: ['single', 'step-majority'],
      // Small activities, so killing a worker interrupts work that another one picks up.
      shards: { size: 8, concurrency: 3, problemsPerActivity: 2, problemsInFlight: 4 },
    },
    prm: { baseModel: 'sim-policy', epochs: 1, batchSize: 8, checkpointEvery: 2 },
    processBench: { splits: uris.splits, baseModel: 'sim-policy' },
    rl: {
      policy: { baseModel: 'sim-policy', model: 'sim-policy' },
      dataset: { uri: uris.prompts, fields },
      evaluation: { sets: [{ name: 'held-out', uri: uris.heldOut, fields }], every: 2 },
      grpo: { batchSize: 4, groupSize: 4 },
      totalSteps: RL_STEPS,
      checkpointEvery: 2,
    },
    seed: 17,
  };
}

/** Every object the run wrote under runs/<run>/: key → sha256 of its bytes, and key → its text. */
async function outputs(store: ObjectStore): Promise<{ hashes: Record<string, string>; texts: Record<string, string> }> {
  const hashes: Record<string, string> = {};
  const texts: Record<string, string> = {};
  for (const key of (await store.list(`runs/${RUN}/`)).sort()) {
    const bytes = await store.getBytes(key);
    hashes[key] = createHash('sha256').update(bytes).digest('hex');
    texts[key] = Buffer.from(bytes).toString('utf8');
  }
  return { hashes, texts };
}

/**
 * What may differ between two runs with the same input, and is no output:
 * - run IDs, by design: the pipeline's lineage manifest records each child's run ID, and trainer
 *   sessions are named after their workflow's first run (`<workflow>-<12 characters of it>`);
 * - when a checkpoint was committed (`committedAt` in its COMMITTED marker);
 * - how much work it took: `callsMade`, `samplesDrawn`, `samplesReused` in stage 1's counts (a
 *   retried activity reads stored samples back instead of paying for them again);
 * - `codeVersion`, which names the checkout's git commit: a shared checkout may move between the runs;
 * - and therefore the sha256 and size by which later objects name those (the PRM data manifest and
 *   the lineage name the labels manifest's);
 * - the order in which the lineage manifest lists the two evaluate-prm children (started at once).
 * Objects whose bytes differ are compared again with these blanked; nothing else may differ.
 */
const VOLATILE_FIELDS = new Set(['committedAt', 'callsMade', 'samplesDrawn', 'samplesReused', 'codeVersion']);
function withoutRunIds(text: string, runIds: readonly string[]): string {
  let out = text;
  for (const id of runIds) out = out.split(id).join('<run-id>').split(id.replace(/[^A-Za-z0-9]/g, '').slice(0, 12)).join('<run-id>');
  return out;
}
/**
 * `text` with run IDs blanked, the fault run's sha256 of objects that differ only in volatile fields
 * replaced by the reference's (`shaMap`), and volatile fields blanked, as are the sizes in
 * references `{ uri, sha256, bytes }` to such objects.
 */
function normalized(text: string, runIds: readonly string[], shaMap: ReadonlyMap<string, string>): string {
  let out = withoutRunIds(text, runIds);
  for (const [from, to] of shaMap) out = out.split(from).join(to);
  const mapped = new Set(shaMap.values());
  try {
    return JSON.stringify(JSON.parse(out), (key, value: unknown) => {
      if (VOLATILE_FIELDS.has(key)) return '<volatile>';
      // A stage's child workflows are listed in the order their starts were recorded, which two
      // children started at once (evaluate-prm and evaluate-prm-base) do not keep from run to run.
      if (key === 'workflows' && Array.isArray(value)) return [...(value as { workflowId: string }[])].sort((a, b) => a.workflowId.localeCompare(b.workflowId));
      const ref = value as { sha256?: unknown; bytes?: unknown } | null;
      if (ref && typeof ref === 'object' && typeof ref.sha256 === 'string' && mapped.has(ref.sha256) && 'bytes' in ref) return { ...ref, bytes: '<volatile>' };
      return value;
    });
  } catch {
    return out; // JSONL parts, text reports: compared as they are
  }
}
/** Keys whose objects differ beyond run IDs, volatile fields and the sha256 of objects that differ only so. */
function realDifferences(reference: Phase, faulted: Phase): { differing: string[]; equalOnceNormalized: string[] } {
  const keys = Object.keys({ ...reference.outputs, ...faulted.outputs }).filter((k) => reference.outputs[k] !== faulted.outputs[k]);
  const shaMap = new Map<string, string>();
  const equal = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const key of keys) {
      if (equal.has(key) || reference.texts[key] === undefined || faulted.texts[key] === undefined) continue;
      const identity = new Map([...shaMap.values()].map((sha) => [sha, sha]));
      if (normalized(reference.texts[key], reference.runIds, identity) === normalized(faulted.texts[key], faulted.runIds, shaMap)) {
        equal.add(key);
        shaMap.set(faulted.outputs[key]!, reference.outputs[key]!);
        changed = true;
      }
    }
  }
  const differing = keys.filter((k) => !equal.has(k));
  // For a look at what differs: both sides, normalized, under .data/production/fault-test/diff/.
  for (const key of differing) {
    const base = join(resultDir, 'diff', key.replace(/[^A-Za-z0-9.-]+/g, '_'));
    mkdirSync(join(resultDir, 'diff'), { recursive: true });
    writeFileSync(`${base}.reference`, normalized(reference.texts[key] ?? '', reference.runIds, new Map([...shaMap.values()].map((sha) => [sha, sha]))));
    writeFileSync(`${base}.fault-run`, normalized(faulted.texts[key] ?? '', faulted.runIds, shaMap));
  }
  return { differing, equalOnceNormalized: [...equal].sort() };
}
/** Stage 1's work counters from the labels manifest. */
function labelCounts(phase: Phase): unknown {
  const text = phase.texts[`runs/${RUN}/labels/manifest.json`];
  return text === undefined ? undefined : (JSON.parse(text) as { counts: unknown }).counts;
}
const sessionName = (session: string | undefined) => (session ?? '').replace(/-[A-Za-z0-9]{12}$/, '');

interface Phase {
  durationS: number;
  outputs: Record<string, string>;
  texts: Record<string, string>;
  /** The pipeline's and its children's run IDs. */
  runIds: string[];
  requestKeys: string[];
  applied: string[];
  paidKeys: string[];
  paidTotal: number;
  result: unknown;
}

/** Waits for the run (the latest of its ID) to close, calling `tick` about every 250 ms; tolerates a Temporal server that is down. */
async function waitForClose(client: SparkClient, handle: SparkHandle<'sparkPipeline'>, tick: () => Promise<void>): Promise<string> {
  for (;;) {
    try {
      const d = await client.temporal.workflow.getHandle(handle.workflowId).describe();
      if (d.status.name !== 'RUNNING') return d.status.name;
    } catch {
      // The server is restarting: keep polling.
    }
    await tick();
    await sleep(250);
  }
}

async function finishPhase(store: ObjectStore, handle: SparkHandle<'sparkPipeline'>, startedAt: number): Promise<Phase> {
  const result = await handle.result();
  const durationS = Math.round((Date.now() - startedAt) / 100) / 10;
  const { hashes, texts } = await outputs(store);
  const description = await handle.describe();
  const runIds = [description.runId, ...Object.values(result.stages).flatMap((s) => s.workflows.map((w) => w.runId))];
  const { entries } = await simLog();
  const paidEntries = entries.filter(paid);
  return {
    durationS,
    outputs: hashes,
    texts,
    runIds,
    requestKeys: (await store.list('cache/requests/')).sort(),
    applied: appliedSteps(trainerEvents()),
    paidKeys: [...new Set(paidEntries.map((e) => e.key))].sort(),
    paidTotal: paidEntries.length,
    result,
  };
}

let client: SparkClient;
/** The test's own S3 client (remade whenever S3 restarts: kept-alive sockets do not survive it). */
let store!: ObjectStore;
let reference: Phase;

beforeAll(async () => {
  mkdirSync(resultDir, { recursive: true });
  // Idempotent: the npm script brought the profile up already; this checks it and starts what is missing.
  profile('up');
  client = await SparkClient.connect({ address: env.TEMPORAL_ADDRESS!, namespace: env.TEMPORAL_NAMESPACE! }, { taskQueue: env.SPARK_TASK_QUEUE! });
});

afterAll(async () => {
  await client?.close();
  store?.destroy();
});

describe('the production profile', () => {
  it('runs sparkPipeline undisturbed (the reference)', async () => {
    const uris = await freshSandbox();
    const t0 = Date.now();
    log('reference run starts');
    const handle = await client.start('sparkPipeline', pipelineInput(uris), { workflowId: WORKFLOW_ID });
    expect(await waitForClose(client, handle, async () => undefined)).toBe('COMPLETED');
    reference = await finishPhase(store, handle, t0);
    log(`reference run completed in ${reference.durationS}s: ${Object.keys(reference.outputs).length} objects, ${reference.paidTotal} paid requests, ${reference.applied.length} applied train steps`);
    writeFileSync(join(resultDir, 'reference.json'), JSON.stringify({ ...reference, texts: undefined }, null, 2));
    expect(new Set(reference.applied).size).toBe(reference.applied.length);
    expect(reference.paidTotal).toBe(reference.paidKeys.length);
  });

  it('completes with the same outputs through a worker SIGKILL (stage 1), a 30 s S3 outage (stage 2) and a Temporal restart (stage 3)', async () => {
    expect(reference, 'the reference run must have completed').toBeDefined();
    const uris = await freshSandbox();
    const t0 = Date.now();
    log('fault run starts');
    const handle = await client.start('sparkPipeline', pipelineInput(uris), { workflowId: WORKFLOW_ID });

    const faults: Record<string, unknown>[] = [];
    /** Requests in flight or queued at the model server when a fault hit: the most that may be paid twice. */
    let inFlightAtFaults = 0;
    let step: 'kill' | 's3' | 'temporal' | 'done' = 'kill';
    let busy = false;
    const stageOfRun = async (): Promise<string | undefined> => {
      try {
        return (await handle.progress({ timeoutMs: 3000 })).stage;
      } catch {
        return undefined;
      }
    };
    const snapshotInFlight = async () => {
      const s = await simLog();
      inFlightAtFaults += s.inFlight + s.queued;
      return { paidSoFar: s.entries.filter(paid).length, inFlight: s.inFlight, queued: s.queued };
    };
    const act = (fn: () => Promise<void>) => {
      busy = true;
      fn().catch((err: unknown) => faults.push({ error: String(err) })).finally(() => (busy = false));
    };

    const tick = async () => {
      if (busy || step === 'done') return;
      if (step === 'kill') {
        // Mid-stage-1: a third of stage 1's requests (24 problems × (1 + M) = 120) paid, the stage still running.
        const paidSoFar = (await simLog()).entries.filter(paid).length;
        if (paidSoFar < 40) return;
        const stage = await stageOfRun();
        step = 's3';
        act(async () => {
          const at = { t: t(), stage, ...(await snapshotInFlight()) };
          profile('kill', 'worker-1');
          log(`SIGKILL worker-1 at stage ${stage} (${at.paidSoFar} requests paid, ${at.inFlight} in flight, ${at.queued} queued)`);
          faults.push({ fault: 'SIGKILL worker-1', ...at });
          await sleep(5000);
          await profileAsync('start', 'worker-1');
          faults.push({ fault: 'worker-1 restarted', t: t() });
        });
      } else if (step === 's3') {
        const stage = await stageOfRun();
        if (stage === undefined || stage === 'starting' || stage === 'labels') return;
        step = 'temporal';
        act(async () => {
          const at = { t: t(), stage, ...(await snapshotInFlight()) };
          profile('stop', 's3');
          log(`S3 stopped at stage ${stage}`);
          await sleep(S3_OUTAGE_MS);
          await profileAsync('start', 's3');
          store.destroy();
          store = newStore();
          log('S3 back');
          faults.push({ fault: `S3 stopped for ${S3_OUTAGE_MS / 1000}s`, ...at, backAt: t() });
        });
      } else if (step === 'temporal') {
        let metricsRows: number;
        try {
          metricsRows = (await store.list(`runs/${RUN}/rl/metrics/`)).length;
        } catch {
          return;
        }
        if (metricsRows < 1) return;
        step = 'done';
        act(async () => {
          const at = { t: t(), rlStepsDone: metricsRows, ...(await snapshotInFlight()) };
          const down = Date.now();
          await profileAsync('stop', 'temporal');
          log(`Temporal server stopped at RL step ${metricsRows}/${RL_STEPS}`);
          await profileAsync('start', 'temporal');
          const downS = Math.round((Date.now() - down) / 100) / 10;
          log(`Temporal server back after ${downS}s`);
          faults.push({ fault: 'Temporal server restarted', ...at, downS });
        });
      }
    };

    const status = await waitForClose(client, handle, tick);
    while (busy) await sleep(250);
    expect(status).toBe('COMPLETED');
    const faulted = await finishPhase(store, handle, t0);
    const { entries } = await simLog();
    const paidTwice = faulted.paidTotal - faulted.paidKeys.length;
    const appliedTwice = faulted.applied.length - new Set(faulted.applied).size;
    const { differing, equalOnceNormalized } = realDifferences(reference, faulted);
    const summary = {
      measuredAt: new Date().toISOString(),
      reference: { durationS: reference.durationS, objects: Object.keys(reference.outputs).length, paidRequests: reference.paidTotal, appliedSteps: reference.applied.length, storedRequests: reference.requestKeys.length },
      faultRun: {
        durationS: faulted.durationS,
        objects: Object.keys(faulted.outputs).length,
        paidRequests: faulted.paidTotal,
        requestsPaidTwice: paidTwice,
        inFlightOrQueuedAtFaults: inFlightAtFaults,
        failedRequestAttempts: entries.filter((e) => !paid(e)).length,
        appliedSteps: faulted.applied.length,
        stepsAppliedTwice: appliedTwice,
        storedRequests: faulted.requestKeys.length,
        byteIdenticalObjects: Object.keys(faulted.outputs).filter((k) => faulted.outputs[k] === reference.outputs[k]).length,
        equalOnceRunIdsAndVolatileFieldsBlanked: equalOnceNormalized,
        differingObjects: differing,
        stage1Counts: { reference: labelCounts(reference), faultRun: labelCounts(faulted) },
      },
      faults,
    };
    writeFileSync(join(resultDir, 'result.json'), JSON.stringify(summary, null, 2));
    log(`fault run completed in ${faulted.durationS}s\n${JSON.stringify(summary, null, 2)}`);

    // Every fault happened where it was meant to.
    expect(faults.map((f) => f.fault)).toEqual(['SIGKILL worker-1', 'worker-1 restarted', `S3 stopped for ${S3_OUTAGE_MS / 1000}s`, 'Temporal server restarted']);
    expect(faults[0]!.stage).toBe('labels');
    expect(faults[2]!.stage).not.toBe('rl-train');
    expect(faults[3]!.rlStepsDone).toBeLessThan(RL_STEPS);

    // Same outputs: every object byte for byte, the lineage manifest up to run IDs.
    expect(Object.keys(faulted.outputs)).toEqual(Object.keys(reference.outputs));
    expect(differing).toEqual([]);
    expect(faulted.requestKeys).toEqual(reference.requestKeys);
    // No train step applied twice, and the same steps applied.
    expect(appliedTwice).toBe(0);
    expect(faulted.applied.sort()).toEqual([...reference.applied].sort());
    // The same requests paid; twice only for what was in flight when a fault hit.
    expect(faulted.paidKeys).toEqual(reference.paidKeys);
    expect(paidTwice).toBeLessThanOrEqual(inFlightAtFaults);

    // SQL visibility: the runs are found by their search attributes on PostgreSQL.
    const listed = await client.list({ runName: RUN, executionStatus: 'Completed', query: `StartTime >= "${new Date(t0).toISOString()}"` });
    expect(listed.map((r) => r.workflowId)).toEqual(expect.arrayContaining(
      [WORKFLOW_ID, `${WORKFLOW_ID}/labels`, `${WORKFLOW_ID}/train-prm`, `${WORKFLOW_ID}/evaluate-prm`, `${WORKFLOW_ID}/evaluate-prm-base`, `${WORKFLOW_ID}/rl-train`],
    ));
  });
});
