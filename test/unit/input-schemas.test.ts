import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inputJsonSchema, workflowInputSchemas } from '../../src/workflows/inputs.js';
import { repoRoot } from '../support/paths.js';

describe('published input schemas', () => {
  for (const name of Object.keys(workflowInputSchemas) as (keyof typeof workflowInputSchemas)[]) {
    it(`docs/schemas/${name}.input.json matches the code (regenerate with npx tsx scripts/export-schemas.ts)`, () => {
      const published: unknown = JSON.parse(readFileSync(`${repoRoot}/docs/schemas/${name}.input.json`, 'utf8'));
      expect(published).toEqual(inputJsonSchema(name));
    });
  }
});
