/**
 * The reference trainer for real models (`trainer/`, Python) as the workflow tests use it: the
 * trainer server in its own process so a test can SIGKILL it, the development model server the
 * trainer publishes to, and the tiny random-weight model both serve, built once per vitest run.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import type { KillableProcess } from './harness.js';
import { spawnKillableCommand } from './harness.js';
import { freePort, repoRoot } from './paths.js';

const python = join(repoRoot, 'trainer/.venv/bin/python');

/** The name both servers give the tiny model (`--model tiny=DIR`). */
export const TINY = 'tiny';

/**
 * One intra-op thread per process: the suite shares two cores, where torch's default thread pool
 * makes generation many times slower, and a fixed thread count keeps CPU results bitwise stable.
 */
const TORCH_ENV = { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false' };

/**
 * How far the tiny model's end-of-turn token leads (`make-tiny-model --end-of-turn-lead`): about one
 * sampled token in nine ends the turn, so a sample at temperature 1 is a few words long and
 * practically never reaches 64 tokens.
 */
const END_OF_TURN_LEAD = '1.5';

let tinyModel: Promise<string> | undefined;

/**
 * `make-tiny-model` once per vitest run, into the suite's data folder (removed at teardown).
 * A random-weight model almost never samples its end-of-turn token, so every answer would run into
 * `max_tokens`; the tests want answers of a few words, so the model is built to end its turns.
 */
export function tinyModelDir(): Promise<string> {
  tinyModel ??= (async () => {
    if (!existsSync(python)) throw new Error(`${python} is missing: run \`npm run setup\` (trainer/install.sh installs the trainer's environment)`);
    const dir = join(inject('dataDir'), 'tiny-model');
    if (existsSync(join(dir, 'config.json'))) return dir;
    const building = `${dir}.${process.pid}`;
    // The tokenizer is trained on GSM8K when the shared datasets are there (a few seconds more).
    await promisify(execFile)(python, ['-m', 'spark_trainer', 'make-tiny-model', building, '--seed', '0', '--end-of-turn-lead', END_OF_TURN_LEAD], { cwd: repoRoot, env: { ...process.env, ...TORCH_ENV } });
    try {
      renameSync(building, dir);
    } catch (err) {
      // Another test file of the same run built it first (vitest runs files in parallel processes).
      if (!existsSync(join(dir, 'config.json'))) throw err;
      rmSync(building, { recursive: true, force: true });
    }
    return dir;
  })();
  return tinyModel;
}

/** A step the trainer applied, as its log says (`session S: step N in …`), with the process that applied it. */
export interface AppliedStep {
  session: string;
  step: number;
  pid: number;
}

/** A session the trainer created, as its log says, and the checkpoint it resumed from (null: fresh weights). */
export interface CreatedSession {
  session: string;
  resumedFrom: string | null;
  pid: number;
}

const STEP_LINE = /session (\S+): step (\d+) in /;
const CREATED_LINE = /session (\S+): created on \S+ \(resumed from (\S+)\)/;

/**
 * The Python trainer (`python -m spark_trainer serve`) on a fixed port, restartable after a
 * SIGKILL on the same port, and the development model server (`serve-model`) it publishes to.
 */
export class PythonTrainerStack {
  private readonly applied: AppliedStep[] = [];
  private readonly created: CreatedSession[] = [];
  private trainer: KillableProcess;

  private constructor(
    private readonly modelServer: KillableProcess,
    private readonly trainerPort: number,
    private readonly modelPort: number,
    private readonly modelDir: string,
    private readonly publishDir: string,
  ) {
    this.trainer = this.spawnTrainer();
  }

  static async start(): Promise<PythonTrainerStack> {
    const modelDir = await tinyModelDir();
    const [trainerPort, modelPort] = [await freePort(), await freePort()];
    const publishDir = mkdtempSync(join(tmpdir(), 'spark-publish-'));
    // One sample per forward pass: a batch's shape changes fp32 rounding, and which requests share a
    // batch depends on timing, so only unbatched decoding gives the same rollouts in two runs (the
    // crash tests compare an interrupted run with an uninterrupted one byte for byte).
    const modelServer = spawnKillableCommand(python, ['-m', 'spark_trainer', 'serve-model', '--port', String(modelPort), '--model', `${TINY}=${modelDir}`, '--device', 'cpu', '--max-batch-size', '1'], {
      env: TORCH_ENV,
      // Unlike `serve`, it prints no ready line: it is ready when it answers.
      readyWhen: async () => (await fetch(`http://127.0.0.1:${modelPort}/health`)).ok,
    });
    const stack = new PythonTrainerStack(modelServer, trainerPort, modelPort, modelDir, publishDir);
    try {
      await Promise.all([stack.trainer.ready, modelServer.ready]);
    } catch (err) {
      await stack.close();
      throw err;
    }
    return stack;
  }

  private spawnTrainer(): KillableProcess {
    const args = ['-m', 'spark_trainer', 'serve', '--port', String(this.trainerPort), '--model', `${TINY}=${this.modelDir}`, '--publish-dir', this.publishDir, '--device', 'cpu'];
    const proc: KillableProcess = spawnKillableCommand(python, args, {
      env: TORCH_ENV,
      readyMarker: '"trainer-ready"',
      onStderrLine: (line) => {
        const step = STEP_LINE.exec(line);
        if (step) this.applied.push({ session: step[1]!, step: Number(step[2]), pid: proc.child.pid! });
        const created = CREATED_LINE.exec(line);
        if (created) this.created.push({ session: created[1]!, resumedFrom: created[2] === 'None' ? null : created[2]!, pid: proc.child.pid! });
      },
    });
    return proc;
  }

  /** The trainer's base URL (the same across restarts). */
  get trainerURL(): string {
    return `http://127.0.0.1:${this.trainerPort}`;
  }

  /** The model server's OpenAI base URL, with /v1, as inference endpoints and publish requests name it. */
  get inferenceURL(): string {
    return `http://127.0.0.1:${this.modelPort}/v1`;
  }

  /** The trainer process now serving. */
  get trainerPid(): number {
    return this.trainer.child.pid!;
  }

  /** Train steps applied by any trainer process so far, of sessions whose ID contains `runName`. */
  appliedSteps(runName: string): AppliedStep[] {
    return this.applied.filter((s) => s.session.includes(runName));
  }

  /** Sessions created by any trainer process so far whose ID contains `runName`. */
  createdSessions(runName: string): CreatedSession[] {
    return this.created.filter((s) => s.session.includes(runName));
  }

  /** The models the development model server serves now (the base and every loaded adapter). */
  async servedModels(): Promise<string[]> {
    const listing = (await (await fetch(`${this.inferenceURL}/models`)).json()) as { data: { id: string }[] };
    return listing.data.map((m) => m.id);
  }

  /** SIGKILLs the trainer (every session and the step in flight are lost) and starts an empty one on the same port. */
  async restartTrainer(): Promise<void> {
    await this.trainer.kill();
    this.trainer = this.spawnTrainer();
    await this.trainer.ready;
  }

  async close(): Promise<void> {
    await Promise.all([this.trainer.kill(), this.modelServer.kill()]);
    rmSync(this.publishDir, { recursive: true, force: true });
  }
}
