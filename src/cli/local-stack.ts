/**
 * The embedded default stack on this machine: Temporal dev server, versitygw, the sandbox model
 * server and the sandbox trainer. Each piece is started only if it is not already answering, runs in the background,
 * and keeps its data and logs under .data/ so runs can be inspected afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface LocalStack {
  temporalAddress: string;
  webUi: string;
  s3Endpoint: string;
  simBaseURL: string;
  /** The sandbox trainer (trainer protocol v1), without the version path. */
  trainerURL: string;
  dataDir: string;
}

/** Ports and credentials of the local stack; each can be overridden by environment. */
export function localStackSettings(env: NodeJS.ProcessEnv = process.env) {
  const dataDir = env.SPARK_DATA_DIR || join(repoRoot, '.data');
  return {
    dataDir,
    temporalPort: Number(env.TEMPORAL_PORT || 7233),
    uiPort: Number(env.TEMPORAL_UI_PORT || 8233),
    s3Port: Number(env.SPARK_S3_PORT || 7070),
    simPort: Number(env.SPARK_SIM_PORT || 8300),
    simSeed: Number(env.SPARK_SIM_SEED || 1),
    trainerPort: Number(env.SPARK_TRAINER_PORT || 8400),
    accessKeyId: env.AWS_ACCESS_KEY_ID || 'sparklocal',
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || 'sparklocalsecret',
    bucket: env.SPARK_S3_BUCKET || 'spark',
  };
}

/** Environment that points workers and clients at the local stack (without overriding what is set). */
export function localStackEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const s = localStackSettings(env);
  return {
    TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS || `127.0.0.1:${s.temporalPort}`,
    SPARK_S3_ENDPOINT: env.SPARK_S3_ENDPOINT || `http://127.0.0.1:${s.s3Port}`,
    SPARK_S3_BUCKET: s.bucket,
    SPARK_S3_FORCE_PATH_STYLE: env.SPARK_S3_FORCE_PATH_STYLE || 'true',
    AWS_ACCESS_KEY_ID: s.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
  };
}

export async function stackUp(log: (msg: string) => void = (m) => console.error(m)): Promise<LocalStack> {
  const s = localStackSettings();
  const env = { ...process.env, ...localStackEnv(), SPARK_DATA_DIR: s.dataDir };
  mkdirSync(join(s.dataDir, 'logs'), { recursive: true });
  mkdirSync(join(s.dataDir, 'run'), { recursive: true });
  execFileSync('bash', [join(repoRoot, 'temporal/start.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('bash', [join(repoRoot, 'infra/local-s3/start.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const simBaseURL = `http://127.0.0.1:${s.simPort}/v1`;
  if (!(await answers(`${simBaseURL}/models`))) {
    startBackground('sim', ['--import', 'tsx', join(repoRoot, 'sandbox/model-server/main.ts'), '--port', String(s.simPort), '--seed', String(s.simSeed)], s.dataDir, env);
    await waitFor(() => answers(`${simBaseURL}/models`), 'the sandbox model server', join(s.dataDir, 'logs/sim.log'));
  }
  log(`[stack] sandbox models on ${simBaseURL}`);
  const trainerURL = `http://127.0.0.1:${s.trainerPort}`;
  if (!(await answers(`${trainerURL}/health`))) {
    startBackground('trainer', ['--import', 'tsx', join(repoRoot, 'sandbox/trainer/main.ts'), '--port', String(s.trainerPort), '--events-file', join(s.dataDir, 'logs/trainer-events.jsonl')], s.dataDir, env);
    await waitFor(() => answers(`${trainerURL}/health`), 'the sandbox trainer', join(s.dataDir, 'logs/trainer.log'));
  }
  log(`[stack] sandbox trainer on ${trainerURL}`);
  return {
    temporalAddress: `127.0.0.1:${s.temporalPort}`,
    webUi: `http://127.0.0.1:${s.uiPort}`,
    s3Endpoint: `http://127.0.0.1:${s.s3Port}`,
    simBaseURL,
    trainerURL,
    dataDir: s.dataDir,
  };
}

/** Stops what stackUp started (by the pid files it wrote); data stays on disk. */
export function stackDown(log: (msg: string) => void = (m) => console.error(m)): void {
  const { dataDir } = localStackSettings();
  for (const name of ['trainer', 'sim', 's3', 'temporal']) {
    const pidFile = join(dataDir, 'run', `${name}.pid`);
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      process.kill(pid, 'SIGTERM');
      log(`[stack] stopped ${name} (pid ${pid})`);
    } catch {
      // not running any more
    }
    unlinkSync(pidFile);
  }
}

function startBackground(name: string, args: string[], dataDir: string, env: NodeJS.ProcessEnv): void {
  const out = openSync(join(dataDir, 'logs', `${name}.log`), 'a');
  const child = spawn(process.execPath, args, { cwd: repoRoot, env, detached: true, stdio: ['ignore', out, out] });
  child.unref();
  writeFileSync(join(dataDir, 'run', `${name}.pid`), String(child.pid));
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, logFile: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not start; see ${logFile}`);
}
