import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INPUT_SCHEMA_VERSION, inputJsonSchema, inputSchemaId, workflowInputSchemas } from 'spark-temporal';
import { repoRoot } from '../support/paths.js';

const names = Object.keys(workflowInputSchemas) as (keyof typeof workflowInputSchemas)[];

describe('published input schemas', () => {
  for (const name of names) {
    it(`docs/schemas/${name}.input.json matches the code (regenerate with npx tsx scripts/export-schemas.ts)`, () => {
      const published: unknown = JSON.parse(readFileSync(`${repoRoot}/docs/schemas/${name}.input.json`, 'utf8'));
      expect(published).toEqual(inputJsonSchema(name));
      expect(published).toMatchObject({ $id: inputSchemaId(name), version: INPUT_SCHEMA_VERSION });
    });
  }

  it('publishes one file per workflow and no stale ones', () => {
    expect(readdirSync(`${repoRoot}/docs/schemas`).sort()).toEqual(names.map((n) => `${n}.input.json`).sort());
  });

  it('carries the package version, and each $id names its workflow and that version', () => {
    const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string };
    expect(INPUT_SCHEMA_VERSION).toBe(pkg.version);
    expect(new Set(names.map(inputSchemaId)).size).toBe(names.length);
    expect(inputSchemaId('rlTrain')).toBe(`urn:spark-temporal:schema:rlTrain.input:${pkg.version}`);
  });

  it('refuses unknown fields in every object, as the client does', () => {
    const objects: Record<string, unknown>[] = [];
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (node === null || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (o.type === 'object' && o.properties) objects.push(o);
      Object.values(o).forEach(visit);
    };
    names.forEach((n) => visit(inputJsonSchema(n)));
    expect(objects.length).toBeGreaterThan(50);
    expect(objects.filter((o) => o.additionalProperties !== false)).toEqual([]);
  });
});
