import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from './datasets.js';
import type { TrainerEvent, TrainerProcess } from './harness.js';
import { readTrainerEvents, spawnTrainerProcess } from './harness.js';
import { freePort } from './paths.js';

/**
 * The world of the GRPO tests (rlTrain, coEvolve): a sandbox model server in the test process that
 * loads published adapters from S3, the sandbox trainer in its own process so a test can kill it,
 * and prompt and held-out sets with answers.
 */
export class TrainingSandbox {
  private constructor(
    readonly sim: SimServer,
    private trainer: TrainerProcess,
    private readonly trainerPort: number,
    private readonly eventsFile: string,
    readonly promptsUri: string,
    readonly heldOutUri: string,
    private readonly trainerEnv: Record<string, string> | undefined,
  ) {}

  /** `trainerEnv` overrides the trainer process's environment (e.g. an S3 of the test's own with its keys). */
  static async start(store: ObjectStore, seeds: { sim: number; prompts: number; heldOut: number }, opts: { trainerEnv?: Record<string, string> } = {}): Promise<TrainingSandbox> {
    const sim = await startSimServer({ seed: seeds.sim, readAdapter: objectStoreAdapterReader(() => store) });
    const port = await freePort();
    const eventsFile = join(mkdtempSync(join(tmpdir(), 'training-sandbox-')), 'events.jsonl');
    const trainer = spawnTrainerProcess({ port, eventsFile, env: opts.trainerEnv });
    await trainer.ready;
    const prompts = await uploadSandboxProblems(store, { seed: seeds.prompts, count: 40, withAnswers: true });
    const heldOut = await uploadSandboxProblems(store, { seed: seeds.heldOut, count: 12, withAnswers: true });
    return new TrainingSandbox(sim, trainer, port, eventsFile, prompts.uri, heldOut.uri, opts.trainerEnv);
  }

  get trainerURL(): string {
    return this.trainer.url;
  }

  /** Every event the trainer processes wrote so far, across restarts. */
  events(): TrainerEvent[] {
    return readTrainerEvents(this.eventsFile);
  }

  /** Applied train steps of sessions whose ID contains `runName`. */
  appliedSteps(runName: string): TrainerEvent[] {
    return this.events().filter((e) => e.event === 'step' && e.applied && e.session?.includes(runName));
  }

  /** SIGKILLs the trainer and starts an empty one on the same port. */
  async restartTrainer(): Promise<void> {
    await this.trainer.kill();
    await new Promise((r) => setTimeout(r, 1000));
    this.trainer = spawnTrainerProcess({ port: this.trainerPort, eventsFile: this.eventsFile, env: this.trainerEnv });
    await this.trainer.ready;
  }

  async close(): Promise<void> {
    await this.trainer.kill();
    await this.sim.close();
  }
}
