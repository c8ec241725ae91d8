/**
 * A run started from the Temporal Web UI, in a real browser: Debian's Chromium driven by
 * playwright-core opens the Web UI of a dev server (started here by temporal/start.sh, as the local
 * stack starts it), fills in the "Start a Workflow" form with the sparkPipeline input documented in
 * docs/web-ui.md, starts it, and finds the run in the UI's workflow list by its `SparkRun` search
 * attribute. A worker process (src/workers/main.ts) runs it to completion on the sandbox.
 *
 * The screenshots (the run's page, the filtered list) go to a temp folder; `SPARK_UPDATE_DOC_IMAGES=1`
 * writes them to docs/img/web-ui-run.png and web-ui-list.png (what docs/web-ui.md and the README show).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateInput } from '../../src/client/index.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { WorkerProcess } from '../support/harness.js';
import { makeStore, spawnWorkerProcess, uniqueTaskQueue } from '../support/harness.js';
import { freePort, repoRoot } from '../support/paths.js';
import { uploadGeneratedSandboxBenchmark } from '../support/processbench.js';
import { TrainingSandbox } from '../support/training-sandbox.js';

/** Debian's Chromium (scripts/setup.sh installs it), or another Chromium on PATH. */
function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const chromiumPath = findChromium();
if (!chromiumPath) console.warn('[web-ui] SKIPPED: no chromium on PATH; `npm run setup` installs Debian\'s chromium package');

/** Where a screenshot goes: docs/img with SPARK_UPDATE_DOC_IMAGES=1 (what the docs show), else the test's temp folder. */
function shot(name: string): string {
  const folder = process.env.SPARK_UPDATE_DOC_IMAGES === '1' ? join(repoRoot, 'docs/img') : join(dir, 'screenshots');
  mkdirSync(folder, { recursive: true });
  return join(folder, name);
}

/** The JSON block docs/web-ui.md tells people to paste into the form. */
function documentedInput(): string {
  const doc = readFileSync(join(repoRoot, 'docs/web-ui.md'), 'utf8');
  const block = /<!-- web-ui-input[^>]*-->\s*```json\n([\s\S]*?)\n```/.exec(doc);
  if (!block?.[1]) throw new Error('docs/web-ui.md has no ```json block after its <!-- web-ui-input --> marker');
  return block[1];
}

/** Replaces each local-stack value of the documented input with this test's; every one must be there. */
function substitute(text: string, replacements: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(replacements)) {
    expect(out, `docs/web-ui.md's input mentions ${from}`).toContain(from);
    out = out.replaceAll(from, to);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'web-ui-'));
const store = makeStore();
const taskQueue = uniqueTaskQueue('web-ui');
let temporalAddress: string;
let webUi: string;
let client: Client;
let connection: Connection | undefined;
let box: TrainingSandbox | undefined;
let worker: WorkerProcess | undefined;
let browser: Browser | undefined;

describe.skipIf(!chromiumPath)(`the Temporal Web UI${chromiumPath ? '' : ' (SKIPPED: no chromium on PATH; `npm run setup` installs it)'}`, () => {
  beforeAll(async () => {
    // A dev server with its Web UI, started the way the local stack starts it, on ports of its own.
    const [temporalPort, uiPort] = [await freePort(), await freePort()];
    execFileSync('bash', [join(repoRoot, 'temporal/start.sh')], {
      env: { ...process.env, TEMPORAL_PORT: String(temporalPort), TEMPORAL_UI_PORT: String(uiPort), SPARK_DATA_DIR: dir },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    temporalAddress = `127.0.0.1:${temporalPort}`;
    webUi = `http://127.0.0.1:${uiPort}`;
    connection = await Connection.connect({ address: temporalAddress });
    client = new Client({ connection, namespace: 'default' });
    box = await TrainingSandbox.start(store, { sim: 71, prompts: 72, heldOut: 73 });
    worker = spawnWorkerProcess({ taskQueue, env: { TEMPORAL_ADDRESS: temporalAddress } });
    await worker.ready;
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.kill();
    await box?.close();
    await connection?.close();
    store.destroy();
    try {
      process.kill(Number(readFileSync(join(dir, 'run/temporal.pid'), 'utf8')));
    } catch {
      // not started, or gone
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a sparkPipeline from the "Start a Workflow" form with the documented JSON and finds it by SparkRun', { timeout: 300_000 }, async () => {
    const runName = `webui-${randomUUID().slice(0, 8)}`;
    const workflowId = `spark/${runName}/pipeline`;
    const problems = await uploadSandboxProblems(store, { seed: 74, count: 8 });
    const splits = await uploadGeneratedSandboxBenchmark(store, { seed: 75, countPerSplit: 8, splits: [{ name: 'gsm8k', minOps: 4, maxOps: 5 }] });
    const input = substitute(documentedInput(), {
      '"web-ui-demo"': JSON.stringify(runName),
      'http://127.0.0.1:8300/v1': box!.sim.url,
      'http://127.0.0.1:8400': box!.trainerURL,
      's3://spark/datasets/sim-arith-seed7-50.jsonl': problems.uri,
      's3://spark/benchmarks/sandbox-processbench-s7-n50/gsm8k.jsonl': splits.gsm8k!,
      's3://spark/datasets/sim-arith-seed8-400-answers.jsonl': box!.promptsUri,
      's3://spark/datasets/sim-arith-seed9-50-answers.jsonl': box!.heldOutUri,
    });
    validateInput('sparkPipeline', JSON.parse(input));

    const page = await browser!.newPage({ viewport: { width: 1440, height: 1000 } });
    const t0 = Date.now();
    const mark = (what: string) => console.log(`[web-ui] ${((Date.now() - t0) / 1000).toFixed(1)} s ${what}`);
    try {
      await startFromForm(page, { workflowId, taskQueue, workflowType: 'sparkPipeline', input });
      mark('started from the form');

      // The run exists, was started by the form with that input, and a worker runs it.
      const handle = client.workflow.getHandle(workflowId);
      const described = await handle.describe();
      expect(described.type).toBe('sparkPipeline');
      expect(described.taskQueue).toBe(taskQueue);
      expect(['RUNNING', 'COMPLETED']).toContain(described.status.name);
      const started = (await handle.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
      const payload = started?.input?.payloads?.[0];
      expect(Buffer.from(payload?.metadata?.encoding ?? []).toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(payload?.data ?? []).toString())).toEqual(JSON.parse(input));
      await waitUntilClosed(handle, 180_000);
      mark('run closed');
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      const result = (await handle.result()) as { rl?: { steps: number } | null };
      expect(result.rl?.steps).toBe(2);

      // The UI's list, filtered by the search attribute: the pipeline and its stages' child workflows.
      const children = ['labels', 'train-prm', 'evaluate-prm', 'rl-train'].map((stage) => `${workflowId}/${stage}`);
      const listed = await findInList(page, `SparkRun="${runName}"`, [workflowId, ...children]);
      expect(listed).toBeGreaterThanOrEqual(5);
      await page.screenshot({ path: shot('web-ui-list.png') });
      mark(`found by SparkRun in the list (${listed} rows)`);

      // The run's own page, for the docs.
      await page.goto(`${webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`, { waitUntil: 'networkidle' });
      await page.getByText('Completed').first().waitFor();
      const png = shot('web-ui-run.png');
      await page.screenshot({ path: png });
      expect(statSync(png).size).toBeGreaterThan(20_000);
      mark(`screenshots in ${join(png, '..')}`);
    } finally {
      await page.close();
    }
  });
});

/** Waits until the run is closed; on timeout, fails with what its pending activities and children say. */
async function waitUntilClosed(handle: WorkflowHandle, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return;
    if (Date.now() > deadline) {
      throw new Error(`${handle.workflowId} still running after ${timeoutMs} ms:\n${await whyOpen(handle)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** What an open run waits on: its pending activities (attempt, last failure) and, in turn, its open children's. */
async function whyOpen(handle: WorkflowHandle, depth = 0): Promise<string> {
  const d = await handle.describe();
  const lines = [`${'  '.repeat(depth)}${handle.workflowId}: ${d.status.name}`];
  for (const a of d.raw.pendingActivities ?? []) lines.push(`${'  '.repeat(depth + 1)}activity ${a.activityType?.name} attempt ${a.attempt}: ${a.lastFailure?.message ?? 'no failure yet'}`);
  for (const c of d.raw.pendingChildren ?? []) lines.push(await whyOpen(client.workflow.getHandle(c.workflowId!, c.runId ?? undefined), depth + 1));
  return lines.join('\n');
}

/** Fills in and submits the Web UI's "Start a Workflow" form, opened from the list's button, as a person would. */
async function startFromForm(page: Page, f: { workflowId: string; taskQueue: string; workflowType: string; input: string }): Promise<void> {
  await page.goto(`${webUi}/namespaces/default/workflows`, { waitUntil: 'networkidle' });
  await page.getByRole('button', { name: 'Start Workflow' }).click();
  await page.waitForURL(/\/start-workflow/);
  await page.getByLabel('Workflow ID').fill(f.workflowId);
  await page.getByLabel('Task Queue').fill(f.taskQueue);
  // Leaving the field, the form looks the queue up: "Task Queue is Active, 1 Worker".
  await page.getByLabel('Workflow Type').click();
  await page.getByText('Task Queue is Active').waitFor({ timeout: 30_000 });
  expect(await page.locator('body').innerText()).toMatch(/Task Queue is Active\s+1 Worker\b/);
  await page.getByLabel('Workflow Type').fill(f.workflowType);
  await page.locator('.cm-content').first().fill(f.input);
  await page.getByLabel('json/plain').check();
  await page.getByTestId('start-workflow-button').click();
  await page.getByText('Workflow started successfully').waitFor({ timeout: 30_000 });
}

/** Types `query` into the workflow list's query box and waits until each of `ids` is listed; returns the number of rows. */
async function findInList(page: Page, query: string, ids: string[]): Promise<number> {
  await page.goto(`${webUi}/namespaces/default/workflows`, { waitUntil: 'networkidle' });
  await page.getByTestId('toggle-manual-query').click();
  const box = page.getByTestId('manual-search-input');
  await box.fill(query);
  await box.press('Enter');
  await page.waitForURL(/[?&]query=/);
  for (const id of ids) await page.getByRole('link', { name: id, exact: true }).first().waitFor({ timeout: 30_000 });
  return page.locator('table tbody tr').count();
}
