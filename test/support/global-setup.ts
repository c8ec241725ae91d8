/**
 * Starts the real stack once for the whole suite: a Temporal dev server (the installed CLI,
 * in memory), versitygw on a temp folder (through infra/local-s3/start.sh), and one prebuilt
 * workflow bundle. Test files get the addresses through vitest's inject().
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { sparkSearchAttributes } from '../../src/core/temporal/search-attributes.js';
import { workflowsPath } from '../../src/workers/create-worker.js';
import { freePort, repoRoot, TEST_S3_KEYS } from './paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    s3Endpoint: string;
    s3Bucket: string;
    workflowBundlePath: string;
    dataDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const temporalBin = join(repoRoot, '.tools/bin/temporal');
  if (!existsSync(temporalBin)) throw new Error(`${temporalBin} is missing: run \`npm test\` (it runs scripts/setup.sh) or \`npm run setup\``);
  const dataDir = mkdtempSync(join(tmpdir(), 'spark-test-'));

  const dynamicConfig = readFileSync(join(repoRoot, 'temporal/dynamic-config.yaml'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .flatMap((l) => ['--dynamic-config-value', `${l.slice(0, l.indexOf(':')).trim()}=${l.slice(l.indexOf(':') + 1).trim()}`]);
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalBin },
      searchAttributes: [...sparkSearchAttributes],
      extraArgs: dynamicConfig,
    },
  });

  const s3Port = await freePort();
  execFileSync('bash', [join(repoRoot, 'infra/local-s3/start.sh')], {
    env: { ...process.env, SPARK_S3_PORT: String(s3Port), SPARK_DATA_DIR: dataDir, ...TEST_S3_KEYS },
    stdio: 'inherit',
  });

  const bundle = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  const workflowBundlePath = join(dataDir, 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, bundle.code);

  project.provide('temporalAddress', env.address);
  project.provide('s3Endpoint', `http://127.0.0.1:${s3Port}`);
  project.provide('s3Bucket', 'spark');
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('dataDir', dataDir);

  return async () => {
    await env.teardown();
    const pid = Number(readFileSync(join(dataDir, 'run/s3.pid'), 'utf8'));
    try {
      process.kill(pid);
    } catch {
      // already gone
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
