import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CreateSessionRequestSchema,
  SaveCheckpointRequestSchema,
  TRAINER_ENDPOINTS,
  TRAINER_ERROR_CODES,
  TRAINER_PROTOCOL_SCHEMAS,
  TRAINER_PROTOCOL_VERSION,
  TrainStepRequestSchema,
  checkProtocolVersion,
  describeProtocolIssues,
  parseProtocolMessage,
} from '../../src/core/trainer/protocol.js';
import { repoRoot } from '../support/paths.js';

import type { TrainerProtocolSchemaName } from '../../src/core/trainer/protocol.js';

const doc = readFileSync(`${repoRoot}/docs/trainer-protocol.md`, 'utf8');

interface Example {
  schema: string;
  line: number;
  json: string;
}

/** Every ```json block, with the schema named by the `<!-- schema: X -->` comment right above it. */
function jsonExamples(markdown: string): { examples: Example[]; unlabelled: number[] } {
  const lines = markdown.split('\n');
  const examples: Example[] = [];
  const unlabelled: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```json') continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```');
    if (end < 0) throw new Error(`unclosed json block at line ${i + 1}`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const label = k >= 0 ? /^<!--\s*schema:\s*(\w+)\s*-->$/.exec(lines[k]!.trim()) : null;
    if (label) examples.push({ schema: label[1]!, line: i + 1, json: lines.slice(i + 1, end).join('\n') });
    else unlabelled.push(i + 1);
    i = end;
  }
  return { examples, unlabelled };
}

const validStep = {
  protocolVersion: 1,
  step: 3,
  batch: { uri: 's3://spark/batches/b.jsonl', sha256: 'a'.repeat(64), bytes: 10 },
  loss: { kind: 'grpo', klCoefficient: 0.001, entropyCoefficient: 0 },
};

const validCreate = {
  protocolVersion: 1,
  sessionId: 'spark-run-1-rl',
  baseModel: 'sim-policy',
  adapter: { kind: 'lora', rank: 8, alpha: 16, targetModules: ['q_proj'] },
  optimizer: { name: 'adamw', learningRate: 1e-6, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 },
  seed: 1,
};

function issues(result: { success: boolean; error?: Parameters<typeof describeProtocolIssues>[0] }): string {
  expect(result.success).toBe(false);
  return describeProtocolIssues(result.error!);
}

describe('docs/trainer-protocol.md examples', () => {
  const { examples, unlabelled } = jsonExamples(doc);

  it('labels every json block with its schema', () => {
    expect(unlabelled, `json blocks at these lines lack a <!-- schema: X --> comment`).toEqual([]);
  });

  it('shows an example of every message schema', () => {
    expect(new Set(examples.map((e) => e.schema))).toEqual(new Set(Object.keys(TRAINER_PROTOCOL_SCHEMAS)));
  });

  for (const example of examples) {
    it(`line ${example.line}: ${example.schema}`, () => {
      expect(Object.keys(TRAINER_PROTOCOL_SCHEMAS), `unknown schema name ${example.schema}`).toContain(example.schema);
      const schema = TRAINER_PROTOCOL_SCHEMAS[example.schema as TrainerProtocolSchemaName];
      const body: unknown = JSON.parse(example.json);
      const parsed = schema.safeParse(body);
      expect(parsed.success ? '' : describeProtocolIssues(parsed.error)).toBe('');
    });
  }

  it('documents every endpoint and every error code', () => {
    for (const { method, path } of Object.values(TRAINER_ENDPOINTS)) expect(doc).toContain(`\`${method} ${path}\``);
    for (const code of TRAINER_ERROR_CODES) expect(doc).toContain(`| \`${code}\` |`);
  });
});

describe('requests reject typos, naming the field', () => {
  it('at the top level', () => {
    const message = issues(TrainStepRequestSchema.safeParse({ ...validStep, learningrate: 1e-6 }));
    expect(message).toBe('learningrate: unknown field');
  });

  it('inside nested objects', () => {
    const optimizer = { ...validCreate.optimizer, weight_decay: 0.1 };
    expect(issues(CreateSessionRequestSchema.safeParse({ ...validCreate, optimizer }))).toContain('optimizer.weight_decay: unknown field');
    const adapter = { ...validCreate.adapter, targetModule: ['q_proj'] };
    const message = issues(CreateSessionRequestSchema.safeParse({ ...validCreate, adapter }));
    expect(message).toContain('adapter.targetModule: unknown field');
    const loss = { ...validStep.loss, klCoef: 0.001 };
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, loss }))).toContain('loss.klCoef: unknown field');
  });

  it('through parseProtocolMessage, as an invalid-request error body', () => {
    const result = parseProtocolMessage(SaveCheckpointRequestSchema, { protocolVersion: 1, uri: 's3://spark/ck/step-1', stpe: 1 });
    expect(result).toEqual({ ok: false, error: { protocolVersion: 1, error: { code: 'invalid-request', message: 'stpe: unknown field' } } });
  });

  it('accepts the valid messages these tests start from', () => {
    expect(TrainStepRequestSchema.safeParse(validStep).success).toBe(true);
    expect(CreateSessionRequestSchema.safeParse(validCreate).success).toBe(true);
  });
});

describe('train step requests', () => {
  it('rejects a grpo loss without its coefficients', () => {
    const message = issues(TrainStepRequestSchema.safeParse({ ...validStep, loss: { kind: 'grpo' } }));
    expect(message).toContain('loss.klCoefficient');
    expect(message).toContain('loss.entropyCoefficient');
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, loss: { kind: 'grpo', klCoefficient: 0.001 } }))).toContain('loss.entropyCoefficient');
  });

  it('rejects grpo coefficients on an sft loss', () => {
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, loss: { kind: 'sft', klCoefficient: 0.001 } }))).toContain('loss.klCoefficient: unknown field');
  });

  it('rejects negative and fractional step numbers, and a batch without a SHA-256', () => {
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, step: -1 }))).toMatch(/^step: /);
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, step: 1.5 }))).toMatch(/^step: /);
    expect(issues(TrainStepRequestSchema.safeParse({ ...validStep, batch: { uri: validStep.batch.uri, bytes: 10 } }))).toMatch(/^batch\.sha256: /);
  });

  it('rejects a checkpoint URI with a trailing slash (one spelling per checkpoint)', () => {
    expect(issues(SaveCheckpointRequestSchema.safeParse({ protocolVersion: 1, uri: 's3://spark/ck/step-1/' }))).toMatch(/^uri: /);
  });
});

describe('checkProtocolVersion', () => {
  it('accepts the current version', () => {
    expect(TRAINER_PROTOCOL_VERSION).toBe(1);
    expect(checkProtocolVersion({ protocolVersion: 1, step: 0 })).toBeUndefined();
  });

  it('names both versions on a mismatch', () => {
    expect(checkProtocolVersion({ protocolVersion: 2 })).toBe(
      'trainer protocol version mismatch: the message is version 2, this side speaks trainer protocol version 1; run a control plane and trainer server that speak the same version',
    );
    expect(checkProtocolVersion({ protocolVersion: '1' })).toContain('the message is version "1", this side speaks trainer protocol version 1');
  });

  it('says what is missing', () => {
    expect(checkProtocolVersion({ step: 0 })).toBe('message has no protocolVersion; this side speaks trainer protocol version 1');
    expect(checkProtocolVersion([])).toBe('expected a JSON object with protocolVersion 1, got an array; this side speaks trainer protocol version 1');
    expect(checkProtocolVersion(null)).toContain('got null');
    expect(checkProtocolVersion('{}')).toContain('got string');
  });

  it('runs before the schema, so a newer message reads as a version mismatch, not as field errors', () => {
    const result = parseProtocolMessage(TrainStepRequestSchema, { ...validStep, protocolVersion: 2, newField: true });
    expect(result).toEqual({
      ok: false,
      error: {
        protocolVersion: 1,
        error: { code: 'version-mismatch', message: checkProtocolVersion({ protocolVersion: 2 }), details: { serverVersion: 1, requestVersion: 2 } },
      },
    });
    expect(TRAINER_PROTOCOL_SCHEMAS.TrainerErrorBody.safeParse(result.ok ? null : result.error).success).toBe(true);
  });

  it('error bodies of another version still parse, so a client can read the mismatch', () => {
    const body = { protocolVersion: 2, error: { code: 'version-mismatch', message: 'server speaks 2', details: { serverVersion: 2, requestVersion: 1 } } };
    expect(TRAINER_PROTOCOL_SCHEMAS.TrainerErrorBody.safeParse(body).success).toBe(true);
  });
});
