import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { repoRoot } from '../support/paths.js';

const eslint = new ESLint({ cwd: repoRoot });

async function ruleIds(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${repoRoot}/${file}` });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

describe('lint keeps workflow code deterministic', () => {
  it('rejects Node built-ins in workflow files', async () => {
    expect(await ruleIds("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", 'src/workflows/index.ts')).toContain('no-restricted-imports');
  });

  it('rejects value imports of activities and I/O clients in workflow files', async () => {
    const ids = await ruleIds("import { createSolutionActivities } from './sample-solutions.activities.js';\nexport const f = createSolutionActivities;\n", 'src/spark/labels/sample-solutions.workflow.ts');
    expect(ids).toContain('no-restricted-imports');
  });

  it('keeps the math answer checker out of workflow files', async () => {
    expect(await ruleIds("import { answersEquivalent } from '../common/math-answer.js';\nexport const f = answersEquivalent;\n", 'src/spark/rl/grpo-loop.workflow.ts')).toContain('no-restricted-imports');
  });

  it('allows type-only activity imports', async () => {
    expect(await ruleIds("import type { SolutionActivities } from './sample-solutions.activities.js';\nexport type A = SolutionActivities;\n", 'src/spark/labels/sample-solutions.workflow.ts')).toEqual([]);
  });

  it('rejects floating promises anywhere', async () => {
    expect(await ruleIds('async function f(): Promise<void> {}\nf();\n', 'src/core/concurrency.ts')).toContain('@typescript-eslint/no-floating-promises');
  });
});

describe('lint keeps imports running down the layers (eslint/layers.js)', () => {
  const upward = 'layers/no-upward-imports';

  it('rejects the shared core importing a stage', async () => {
    expect(await ruleIds("import { stepName } from '../../spark/rl/grpo.js';\nexport const f = stepName;\n", 'src/core/trainer/plan.ts')).toContain(upward);
  });

  it('rejects a stage importing a later stage, type-only imports included', async () => {
    expect(await ruleIds("import type { RecycleOptions } from '../co-evolve/recycling.js';\nexport type R = RecycleOptions;\n", 'src/spark/rl/grpo-loop.workflow.ts')).toContain(upward);
    expect(await ruleIds("import { trainPrm } from '../prm/train-prm.workflow.js';\nexport const f = trainPrm;\n", 'src/spark/labels/labels.ts')).toContain(upward);
  });

  it('rejects product code importing the sandbox', async () => {
    expect(await ruleIds("import { generateProblems } from '../../sandbox/arith.js';\nexport const f = generateProblems;\n", 'src/client/index.ts')).toContain(upward);
  });

  it('rejects the client importing the CLI', async () => {
    expect(await ruleIds("import { repoRoot } from '../cli/local-stack.js';\nexport const r = repoRoot;\n", 'src/client/index.ts')).toContain(upward);
  });

  it('allows imports down the layers and within a stage', async () => {
    expect(await ruleIds("import { stepName } from '../rl/grpo.js';\nimport { recycleBatch } from './recycling.js';\nexport const f = [stepName, recycleBatch];\n", 'src/spark/co-evolve/activities.ts')).toEqual([]);
    expect(await ruleIds("import { labelQuality } from './label-quality.js';\nimport { ObjectStore } from '../src/core/store/s3-store.js';\nexport const f = [labelQuality, ObjectStore];\n", 'sandbox/main-job.ts')).toEqual([]);
  });

  it('holds on the tree as it is', async () => {
    const results = await eslint.lintFiles(['src/**/*.ts', 'sandbox/**/*.ts']);
    const upwards = results.flatMap((r) => r.messages.filter((m) => m.ruleId === upward).map((m) => `${r.filePath}: ${m.message}`));
    expect(upwards).toEqual([]);
  });
});

