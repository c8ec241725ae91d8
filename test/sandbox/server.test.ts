import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateProblems } from '../../sandbox/arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import {
  parseCritique, parsePolicyResponse, parseProcessBenchAnswer, parseRewardModelOutput, parseVerification,
} from '../../src/spark/common/formats.js';
import {
  buildCriticMessages, buildGeneratorMessages, buildMergeMessages, buildPrmMessages, buildProcessBenchMessages, buildVerifierMessages,
} from '../../src/spark/common/prompts.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { readLog, startServer } from './httpHelpers.js';

const [problem] = generateProblems({ seed: 3, count: 1 });
const question = problem!.question;
const logFile = join(mkdtempSync(join(tmpdir(), 'sim-log-')), 'requests.jsonl');

let server: SimServer;
let client: OpenAI;

beforeAll(async () => {
  ({ server, client } = await startServer({ logFile }));
});
afterAll(async () => {
  await server.close();
});

async function complete(messages: ChatMessage[], extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) {
  return client.chat.completions.create({ model: 'sim-verifier', messages, temperature: 0.8, seed: 7, ...extra });
}

describe('the OpenAI-compatible API', () => {
  it('lists the default models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['sim-policy', 'sim-verifier']));
  });

  it('answers every role in a form the domain parsers accept', async () => {
    const policy = await complete(buildGeneratorMessages(question), { model: 'sim-policy' });
    expect(policy.object).toBe('chat.completion');
    expect(policy.choices[0]?.finish_reason).toBe('stop');
    expect(policy.usage?.total_tokens).toBe((policy.usage?.prompt_tokens ?? 0) + (policy.usage?.completion_tokens ?? 0));
    const solution = parsePolicyResponse(policy.choices[0]?.message.content ?? '');
    expect(solution.steps.length).toBeGreaterThanOrEqual(4);
    const view = { question, steps: solution.steps, answer: solution.answerBlock };

    const verification = (await complete(buildVerifierMessages(view))).choices[0]?.message.content ?? '';
    expect(parseVerification(verification).ok).toBe(true);
    const critique = (await complete(buildCriticMessages({ ...view, verification }), { temperature: 0 })).choices[0]?.message.content ?? '';
    expect(parseCritique(critique).ok).toBe(true);
    const merged = (await complete(buildMergeMessages({ ...view, verification, critique }), { temperature: 0 })).choices[0]?.message.content ?? '';
    expect(parseVerification(merged).ok).toBe(true);
    const orm = (await complete(buildPrmMessages({ ...view, style: 'orm' }), { temperature: 0 })).choices[0]?.message.content ?? '';
    expect(parseRewardModelOutput('orm', orm).ok).toBe(true);
    const prm = (await complete(buildPrmMessages({ ...view, style: 'prm-cot' }), { temperature: 0 })).choices[0]?.message.content ?? '';
    expect(parseRewardModelOutput('prm-cot', prm).ok).toBe(true);
    const pb = (await complete(buildProcessBenchMessages({ problem: question, steps: solution.steps }), { temperature: 0 })).choices[0]?.message.content ?? '';
    expect(parseProcessBenchAnswer(pb)).not.toBeNull();
  });

  it('is deterministic: the same request gives the same output, another seed another output', async () => {
    const messages = buildGeneratorMessages(question);
    const a = await complete(messages, { model: 'sim-policy', n: 8 });
    const b = await complete(messages, { model: 'sim-policy', n: 8 });
    const c = await complete(messages, { model: 'sim-policy', n: 8, seed: 8 });
    const contents = (r: OpenAI.ChatCompletion) => r.choices.map((ch) => ch.message.content);
    expect(contents(b)).toEqual(contents(a));
    expect(contents(c)).not.toEqual(contents(a));
  });

  it('returns K choices for n = K: distinct samples at temperature > 0, identical ones at temperature 0', async () => {
    const messages = buildVerifierMessages({ question, steps: ['1 + 1 = 3.', '3 × 2 = 6.', 'So far the value is 6.', '6 - 1 = 5.'] });
    const sampled = await complete(messages, { n: 16, temperature: 1.5 });
    expect(sampled.choices.map((ch) => ch.index)).toEqual([...Array(16).keys()]);
    expect(new Set(sampled.choices.map((ch) => ch.message.content)).size).toBeGreaterThan(1);
    const greedy = await complete(messages, { n: 4, temperature: 0 });
    expect(greedy.choices).toHaveLength(4);
    expect(new Set(greedy.choices.map((ch) => ch.message.content)).size).toBe(1);
  });

  it('cuts output at max_tokens and says so in finish_reason', async () => {
    const messages = buildVerifierMessages({ question, steps: ['17 + 25 = 42.', '42 × 3 = 126.'] });
    const full = await complete(messages, { temperature: 0 });
    const cut = await complete(messages, { temperature: 0, max_tokens: 10 });
    expect(cut.choices[0]?.finish_reason).toBe('length');
    expect(cut.usage?.completion_tokens).toBeLessThanOrEqual(10);
    expect(full.choices[0]?.message.content?.startsWith(cut.choices[0]?.message.content ?? 'x')).toBe(true);
  });

  it('answers 404 for an unknown model and 400 naming the field for an invalid body', async () => {
    await expect(complete(buildGeneratorMessages(question), { model: 'no-such-model' })).rejects.toMatchObject({ status: 404, message: expect.stringContaining('no-such-model') });
    await expect(complete(buildGeneratorMessages(question), { temperature: 5 })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('temperature') });
    await expect(complete([], {})).rejects.toMatchObject({ status: 400, message: expect.stringContaining('messages') });
    await expect(complete([{ role: 'user', content: 42 as unknown as string }])).rejects.toMatchObject({ status: 400, message: expect.stringContaining('messages.0.content') });
    await expect(client.chat.completions.create({ model: 'sim-policy', messages: buildGeneratorMessages(question), stream: true })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('stream') });
    const raw = await fetch(`${server.url}/chat/completions`, { method: 'POST', body: '{not json' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { message: string } }).error.message).toContain('Invalid JSON');
  });

  it('logs every request with role, status and per-key successes, also to a JSONL file', async () => {
    await fetch(server.url.replace(/\/v1$/, '/sim/log/reset'), { method: 'POST' });
    const messages = buildPrmMessages({ style: 'orm', question, steps: ['17 + 25 = 42.'] });
    await complete(messages);
    await complete(messages);
    await complete(messages, { seed: 99 });
    await expect(complete(messages, { model: 'missing' })).rejects.toThrow();
    const log = await readLog(server);
    expect(log.entries).toHaveLength(3); // the 404 never reached a model
    expect(log.counts.byRole).toEqual({ orm: 3 });
    expect(log.counts.byStatus).toEqual({ 200: 3 });
    expect(Object.values(log.counts.successesByKey).sort()).toEqual([1, 2]);
    const [first, second] = log.entries;
    expect(first?.key).toBe(second?.key);
    expect(first).toMatchObject({ model: 'sim-verifier', role: 'orm', n: 1, status: 200 });
    const fileEntries = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number });
    expect(fileEntries.map((e) => e.seq)).toEqual(expect.arrayContaining(log.entries.map((e) => e.seq)));
  });

  it('validates runtime config changes', async () => {
    const base = server.url.replace(/\/v1$/, '/sim/config');
    const bad = await fetch(base, { method: 'POST', body: JSON.stringify({ faults: { rate500: 2 } }) });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('faults.rate500');
    const good = await fetch(base, { method: 'POST', body: JSON.stringify({ latency: { medianMs: 1 } }) });
    expect(((await good.json()) as { latency: { medianMs: number; sigma: number } }).latency).toMatchObject({ medianMs: 1, sigma: 0.5 });
    expect(() => server.setConfig({ maxConcurrent: 0 })).toThrow(/maxConcurrent/);
  });
});

describe('the command line entry', () => {
  it('prints its URL as one JSON line, serves, and exits cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'sandbox/model-server/main.ts', '--port', '0', '--seed', '3'], { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
    const firstLine = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const { url } = JSON.parse(firstLine) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const cli = new OpenAI({ baseURL: url, apiKey: 'sim', maxRetries: 0 });
    expect((await cli.models.list()).data.length).toBeGreaterThanOrEqual(2);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
