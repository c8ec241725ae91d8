import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sparkSearchAttributes } from '../../src/core/temporal/search-attributes.js';
import { repoRoot } from '../support/paths.js';

describe('search attributes', () => {
  it('the dev server registers exactly the attributes the workflows set', () => {
    const registered = readFileSync(`${repoRoot}/temporal/search-attributes.txt`, 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/).join(' '));
    const typeName: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int', DOUBLE: 'Double', BOOL: 'Bool', TEXT: 'Text', DATETIME: 'Datetime' };
    const defined = sparkSearchAttributes.map((k) => `${k.name} ${typeName[k.type.toUpperCase()] ?? k.type}`);
    expect(registered.sort()).toEqual(defined.sort());
  });
});
