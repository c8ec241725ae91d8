/**
 * The package as another service gets it: `npm pack` (which builds dist/), the tarball installed
 * into a scratch project outside the repository, then plain `node` (no tsx) starting a labels run
 * on the test stack and reading its labels, `npx spark` from the installed bin, and `tsc` on a
 * TypeScript consumer where a wrong field type must fail to compile.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { makeStore, stackEnv, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { repoRoot } from '../support/paths.js';

const run = promisify(execFile);
const fixtures = join(repoRoot, 'test/package/consumer');
const scratch = mkdtempSync(join(tmpdir(), 'spark-consumer-'));
const taskQueue = uniqueTaskQueue('consumer');
const store = makeStore();
let sim: SimServer;
let packed: { filename: string; entryCount: number; size: number; files: { path: string }[] };

/** The environment without npm's own variables: the scratch project is not this repository's script. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return { ...env, ...extra };
}

const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const devVersion = (name: string): string => (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

beforeAll(async () => {
  // `npm pack` runs prepack: the build into dist/ and its trim.
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: repoRoot, env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  packed = (JSON.parse(out.slice(out.indexOf('['))) as (typeof packed)[])[0]!;
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(scratch, f));
  // A TypeScript service brings its own compiler and Node types; these match the repository's (cached).
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(scratch, packed.filename), `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`], {
    cwd: scratch, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'],
  });
  sim = await startSimServer({ seed: 23, readAdapter: objectStoreAdapterReader(() => store) });
}, 300_000);

afterAll(async () => {
  await sim?.close();
  store.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the npm package, installed from its tarball', () => {
  it('ships the build, the bin and the input schemas only: no sources, tests, sandbox or CI files', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain('dist/client/index.js');
    expect(paths).toContain('dist/client/index.d.ts');
    expect(paths).toContain('dist/cli/spark.js');
    expect(paths).toContain('docs/schemas/rlTrain.input.json');
    expect(paths.filter((p) => !/^(dist\/|docs\/schemas\/[\w]+\.input\.json$|bin\/spark\.mjs$|package\.json$|README\.md$)/.test(p))).toEqual([]);
    // No worker, activities or sandbox code, even compiled.
    expect(paths.filter((p) => /^dist\/(workers|activities|sandbox)\/|activities\.js$/.test(p))).toEqual([]);
    console.info(`[consumer] tarball: ${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} kB`);
  });

  it('installs without tsx or the Temporal worker SDK, and exports the input schemas', async () => {
    const installed = join(scratch, 'node_modules');
    expect(existsSync(join(installed, 'spark-temporal/dist/client/index.js'))).toBe(true);
    expect(existsSync(join(installed, 'tsx'))).toBe(false);
    expect(existsSync(join(installed, '@temporalio/worker'))).toBe(false);
    const script = "const s = await import('spark-temporal/schemas/rlTrain.input.json', { with: { type: 'json' } }); console.log(JSON.stringify([s.default.$id, s.default.version]));";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: scratch });
    expect(JSON.parse(stdout)).toEqual([expect.stringMatching(/^urn:spark-temporal:schema:rlTrain\.input:/), packageVersion]);
  });

  it('a plain node script starts synthesizeLabels on the stack, waits for it and reads the labels manifest', { timeout: 120_000 }, async () => {
    const dataset = await uploadSandboxProblems(store, { seed: 24, count: 4 });
    const runName = `consumer-${randomUUID().slice(0, 8)}`;
    const input = {
      runName,
      dataset: { uri: dataset.uri },
      generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
      solutionsPerProblem: 2,
      verificationsPerSolution: 2,
      methods: ['step-majority'],
    };
    writeFileSync(join(scratch, 'labels.json'), JSON.stringify(input));
    const env = cleanEnv({ ...stackEnv(), SPARK_TASK_QUEUE: taskQueue });
    await withWorker({ taskQueue }, async () => {
      const { stdout } = await run(process.execPath, ['service.mjs', 'labels.json'], { cwd: scratch, env });
      const out = JSON.parse(stdout) as { workflowId: string; result: { lines: number; manifest: { uri: string } }; progress: { problemsTotal: number }; manifest: { lines: number; parts: unknown[] }; lines: number };
      expect(out.workflowId).toBe(`spark/${runName}/synthesize-labels`);
      expect(out.result.lines).toBe(8);
      expect(out.manifest.lines).toBe(8);
      expect(out.lines).toBe(8);
      expect(out.progress.problemsTotal).toBe(4);
      expect(out.result.manifest.uri).toMatch(new RegExp(`^s3://spark/runs/${runName}/`));

      // The installed bin: status of that run, and a bad input refused naming the field (exit 2).
      const status = await run('npx', ['--no', 'spark', 'status', out.workflowId, '--json'], { cwd: scratch, env });
      expect(JSON.parse(status.stdout)).toMatchObject({ workflow: out.workflowId, type: 'synthesizeLabels', status: 'completed', progress: { problemsTotal: 4, stage: 'completed' } });
      writeFileSync(join(scratch, 'bad.json'), JSON.stringify({ ...input, solutionsPerProblem: 'two' }));
      const bad = await run('npx', ['--no', 'spark', 'start', 'synthesizeLabels', '--config', 'bad.json'], { cwd: scratch, env }).catch((e: unknown) => e as { code: number; stderr: string });
      expect(bad).toMatchObject({ code: 2 });
      expect((bad as { stderr: string }).stderr).toMatch(/solutionsPerProblem: expected number/);
    });
  });

  it('npx spark start runs a labels run from the installed bin; worker and stack say they need a checkout', { timeout: 120_000 }, async () => {
    const dataset = await uploadSandboxProblems(store, { seed: 25, count: 2 });
    const runName = `consumer-cli-${randomUUID().slice(0, 8)}`;
    writeFileSync(join(scratch, 'cli.json'), JSON.stringify({
      runName,
      dataset: { uri: dataset.uri },
      generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
      solutionsPerProblem: 2,
      verificationsPerSolution: 2,
      methods: ['step-majority'],
    }));
    const env = cleanEnv({ ...stackEnv(), SPARK_TASK_QUEUE: taskQueue });
    await withWorker({ taskQueue }, async () => {
      const started = await run('npx', ['--no', 'spark', 'start', 'synthesizeLabels', '--config', 'cli.json', '--wait'], { cwd: scratch, env });
      expect(started.stdout).toContain(`spark/${runName}/synthesize-labels`);
    });
    for (const args of [['worker'], ['stack', 'up']]) {
      const refused = await run('npx', ['--no', 'spark', ...args], { cwd: scratch, env }).catch((e: unknown) => e as { code: number; stderr: string });
      expect(refused).toMatchObject({ code: 1 });
      expect((refused as { stderr: string }).stderr).toMatch(new RegExp(`spark ${args[0]} runs from a checkout of spark-temporal`));
    }
  });

  it('types are real: a TypeScript consumer compiles, and a wrong field type fails tsc', { timeout: 120_000 }, async () => {
    const tsc = join(scratch, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: scratch }).then(() => ({ code: 0, stdout: '' }), (e: unknown) => e as { code: number; stdout: string });
    expect(result.code).not.toBe(0);
    const errors = result.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    // typed.ts is clean; every marked line of wrong-type.ts fails, and nothing else.
    const expected = readFileSync(join(fixtures, 'wrong-type.ts'), 'utf8').split('\n').flatMap((l, i) => (l.includes('// expect error') ? [i + 1] : []));
    expect(errors.every((l) => l.startsWith('wrong-type.ts('))).toBe(true);
    expect([...new Set(errors.map((l) => Number(/^wrong-type\.ts\((\d+),/.exec(l)?.[1])))]).toEqual(expected);
    expect(result.stdout).toMatch(/wrong-type\.ts\(10,\d+\): error TS2322: Type 'string' is not assignable to type 'number/);
  });
});
