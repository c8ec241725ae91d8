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
    const ids = await ruleIds("import { createSolutionActivities } from '../activities/solutions.js';\nexport const f = createSolutionActivities;\n", 'src/workflows/index.ts');
    expect(ids).toContain('no-restricted-imports');
  });

  it('keeps the math answer checker out of workflow files', async () => {
    expect(await ruleIds("import { answersEquivalent } from '../domain/math-answer.js';\nexport const f = answersEquivalent;\n", 'src/workflows/index.ts')).toContain('no-restricted-imports');
  });

  it('allows type-only activity imports', async () => {
    expect(await ruleIds("import type { SolutionActivities } from '../activities/solutions.js';\nexport type A = SolutionActivities;\n", 'src/workflows/index.ts')).toEqual([]);
  });

  it('rejects floating promises anywhere', async () => {
    expect(await ruleIds('async function f(): Promise<void> {}\nf();\n', 'src/domain/concurrency.ts')).toContain('@typescript-eslint/no-floating-promises');
  });
});
