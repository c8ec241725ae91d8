import { describe, expect, it } from 'vitest';
import { FieldMapSchema, parseProblems } from '../../src/core/store/dataset.js';

const defaults = FieldMapSchema.parse({});

describe('problem datasets', () => {
  it('reads GSM8K-style rows without a reference answer being required, numbering rows by line', () => {
    const text = '{"question":"Q1","answer":"A #### 3"}\n\n{"question":"Q2","answer":"B #### 4"}\n';
    expect(parseProblems(text, defaults)).toEqual([
      { id: 'row-1', question: 'Q1' },
      { id: 'row-3', question: 'Q2' },
    ]);
  });

  it('uses an `id` field when rows have one, and maps other field names', () => {
    const text = '{"id":"p-7","problem":"What?","solution":"\\\\boxed{1}"}\n';
    expect(parseProblems(text, FieldMapSchema.parse({ question: 'problem', answer: 'solution' }))).toEqual([
      { id: 'p-7', question: 'What?', reference: '\\boxed{1}' },
    ]);
  });

  it('applies offset and limit over non-blank rows', () => {
    const text = ['a', 'b', 'c', 'd'].map((q) => JSON.stringify({ question: q })).join('\n');
    expect(parseProblems(text, defaults, 1, 2).map((p) => p.question)).toEqual(['b', 'c']);
  });

  it('names the line and the field when a row is unusable', () => {
    expect(() => parseProblems('{"question":"ok"}\n{"text":"no question"}\n', defaults)).toThrow('line 2: field "question" (the question) must be a non-empty string');
    expect(() => parseProblems('not json\n', defaults)).toThrow('line 1: not valid JSON');
    expect(() => parseProblems('{"question":"q"}\n', FieldMapSchema.parse({ id: 'uid' }))).toThrow('line 1: field "uid" (the id) is missing');
  });
});
