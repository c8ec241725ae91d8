/**
 * The neural world's models on this machine: built by the trainer (`make-world-models`, cached by
 * content hash) and served by the reference trainer (`serve`) and the development model server
 * (`serve-model`), each in a child process of the command that needs them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/cli/local-stack.js';
import type { WorldProblemSettings } from './world-text.js';

const python = join(repoRoot, 'trainer/.venv/bin/python');

/** One thread per process: the servers share two cores with the worker, and fixed threads keep CPU results stable. */
export const TORCH_ENV = { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false' };

/** What `world.json` records (the fields the commands read). */
export interface WorldInfo {
  seed: number;
  size: 'ci' | 'default';
  problems: WorldProblemSettings;
  policyAccuracy: number;
  verifierStepAccuracy: number;
  verifierBalancedAccuracy: number;
  buildSeconds: number;
  contentHash: string;
}

/** A built world: its folder, its models' folders and what it measured. */
export interface World {
  dir: string;
  policyDir: string;
  verifierDir: string;
  info: WorldInfo;
}

/** `.models/world-<size>-s<seed>` under the repository (git-ignored), where the commands keep their worlds. */
export function defaultWorldDir(size: 'ci' | 'default', seed: number): string {
  return join(repoRoot, '.models', `world-${size}-s${seed}`);
}

/** Reads a world folder, or says what is missing and how to build it. */
export function readWorld(dir: string): World {
  const missing = ['world.json', 'policy/config.json', 'verifier/config.json'].filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new Error(`${dir} is not a built neural world (missing ${missing.join(', ')}): build it with \`npm run trainer -- make-world-models ${dir}\``);
  }
  return { dir, policyDir: join(dir, 'policy'), verifierDir: join(dir, 'verifier'), info: JSON.parse(readFileSync(join(dir, 'world.json'), 'utf8')) as WorldInfo };
}

/** Builds the world in `dir` unless it is there already (the trainer's content hash decides); progress goes to stderr. */
export async function ensureWorld(opts: { dir: string; seed: number; size: 'ci' | 'default' }): Promise<World> {
  if (!existsSync(python)) throw new Error(`${python} is missing: run \`npm run setup\` (trainer/install.sh installs the trainer's environment)`);
  await run(python, ['-m', 'spark_trainer', 'make-world-models', opts.dir, '--seed', String(opts.seed), '--size', opts.size]);
  return readWorld(opts.dir);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env } });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} ended with ${signal ?? `code ${code}`}`))));
  });
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The world's models behind real servers, each under its role's name (`policy`, `verifier`): the reference trainer trains them, the model server serves them and what is published. */
export interface WorldServers {
  /** The trainer's base URL. */
  trainerURL: string;
  /** The model server's OpenAI base URL (with /v1). */
  inferenceURL: string;
  /** Stderr lines of the trainer so far (applied steps, sessions). */
  trainerLog: string[];
  close(): Promise<void>;
}

/**
 * Starts `serve` and `serve-model` (models: `policy`, `verifier`) on free ports,
 * with a publish folder of their own; resolves once both answer. `env` must point the trainer at
 * S3 (`SPARK_S3_ENDPOINT`, keys), where it writes checkpoints.
 */
export async function startWorldServers(world: World, opts: { env?: Record<string, string> } = {}): Promise<WorldServers> {
  const [trainerPort, modelPort] = [await freePort(), await freePort()];
  const publishDir = mkdtempSync(join(tmpdir(), 'spark-world-publish-'));
  const env = { ...process.env, ...TORCH_ENV, ...opts.env };
  const trainerLog: string[] = [];
  const children: ChildProcess[] = [];
  const start = (args: string[]) => {
    const child = spawn(python, ['-m', 'spark_trainer', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    return child;
  };
  const roles = ['--model', `policy=${world.policyDir}`, '--model', `verifier=${world.verifierDir}`];
  const trainer = start(['serve', '--port', String(trainerPort), ...roles, '--publish-dir', publishDir, '--device', 'cpu']);
  trainer.stderr?.setEncoding('utf8').on('data', (chunk: string) => trainerLog.push(...chunk.split('\n').filter(Boolean)));
  const models = start(['serve-model', '--port', String(modelPort), ...roles, '--device', 'cpu']);
  let modelErr = '';
  models.stderr?.setEncoding('utf8').on('data', (chunk: string) => { modelErr = (modelErr + chunk).slice(-4000); });
  const servers: WorldServers = {
    trainerURL: `http://127.0.0.1:${trainerPort}`,
    inferenceURL: `http://127.0.0.1:${modelPort}/v1`,
    trainerLog,
    close: async () => {
      await Promise.all(children.map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      })));
      rmSync(publishDir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all([
      waitUntilAnswering(`${servers.trainerURL}/health`, trainer, () => trainerLog.slice(-20).join('\n')),
      waitUntilAnswering(`${servers.inferenceURL.replace(/\/v1$/, '')}/health`, models, () => modelErr),
    ]);
  } catch (err) {
    await servers.close();
    throw err;
  }
  return servers;
}

async function waitUntilAnswering(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url.replace(/\/health$/, '')} exited with code ${child.exitCode} before answering:\n${output()}`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within 180 s:\n${output()}`);
}
