import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstErrorIndex, generateProblems } from '../../sandbox/arith.js';
import { parsePolicyResponse, parseRewardModelOutput } from '../../src/spark/common/formats.js';
import { buildGeneratorMessages, buildPrmMessages } from '../../src/spark/common/prompts.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startServer } from './httpHelpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sim-lora-'));
const careful = join(dir, 'careful.json');
writeFileSync(careful, JSON.stringify({ base: 'sim-policy', policy: { errorLogits: { add: -20, subtract: -20, multiply: -20, divide: -20 } } }));
const labeller = join(dir, 'labeller');
mkdirSync(labeller);
writeFileSync(join(labeller, 'adapter.json'), JSON.stringify({ base: 'sim-verifier', prm: { style: 'prm' } }));
const invalid = join(dir, 'invalid.json');
writeFileSync(invalid, JSON.stringify({ policy: { subtleFraction: 3 } }));

let server: SimServer;
let client: OpenAI;
const memory: Record<string, unknown> = { 'mem://strict': { verifier: { falseAlarm: 0 } } };

beforeAll(async () => {
  ({ server, client } = await startServer({
    // Stands in for an object-store reader: anything that resolves a path to a document.
    readAdapter: async (path) => {
      if (path in memory) return memory[path];
      const { readLocalAdapter } = await import('../../sandbox/model-server/models.js');
      return readLocalAdapter(path);
    },
  }));
});
afterAll(async () => {
  await server.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

describe("vLLM's LoRA endpoints", () => {
  it('loads an adapter, refuses the same name twice, unloads it, and refuses to unload it again', async () => {
    expect(await post('load_lora_adapter', { lora_name: 'careful', lora_path: careful })).toEqual({ status: 200, text: "Success: LoRA adapter 'careful' added successfully." });
    expect((await client.models.list()).data.find((m) => m.id === 'careful')).toMatchObject({ parent: 'sim-policy' });
    const again = await post('load_lora_adapter', { lora_name: 'careful', lora_path: careful });
    expect(again.status).toBe(400);
    expect(again.text).toContain('has already been loaded');
    expect(await post('unload_lora_adapter', { lora_name: 'careful' })).toEqual({ status: 200, text: "Success: LoRA adapter 'careful' removed successfully." });
    const gone = await post('unload_lora_adapter', { lora_name: 'careful' });
    expect(gone.status).toBe(400);
    expect(gone.text).toContain('cannot be found');
    await expect(client.chat.completions.create({ model: 'careful', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });
    expect((await post('unload_lora_adapter', { lora_name: 'sim-policy' })).status).toBe(400);
  });

  it('refuses invalid documents and unreadable paths with a message naming the problem', async () => {
    const bad = await post('load_lora_adapter', { lora_name: 'bad', lora_path: invalid });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('policy.subtleFraction');
    const missing = await post('load_lora_adapter', { lora_name: 'missing', lora_path: join(dir, 'nope.json') });
    expect(missing.status).toBe(400);
    expect(missing.text).toContain('nope.json');
    expect((await post('load_lora_adapter', { lora_name: 'x' })).text).toContain('lora_path');
    expect((await post('load_lora_adapter', { lora_name: 'x', lora_path: 's3://bucket/x' })).status).toBe(400);
  });

  it('serves a loaded adapter with its own behaviour', async () => {
    expect((await post('load_lora_adapter', { lora_name: 'careful-2', lora_path: pathToFileURL(careful).href })).status).toBe(200);
    const problems = generateProblems({ seed: 4, count: 15 });
    let baseWrong = 0;
    let adapterWrong = 0;
    for (const p of problems) {
      for (const [model, count] of [['sim-policy', () => baseWrong++], ['careful-2', () => adapterWrong++]] as const) {
        const r = await client.chat.completions.create({ model, messages: buildGeneratorMessages(p.question), temperature: 1, seed: 1, n: 4 });
        for (const ch of r.choices) if (firstErrorIndex(p.question, parsePolicyResponse(ch.message.content ?? '').steps) >= 0) count();
      }
    }
    expect(baseWrong).toBeGreaterThan(10);
    expect(adapterWrong).toBe(0);

    expect((await post('load_lora_adapter', { lora_name: 'labeller', lora_path: labeller })).status).toBe(200);
    const prompt = buildPrmMessages({ style: 'prm', question: problems[0]!.question, steps: ['1 + 1 = 2.'] });
    const base = await client.chat.completions.create({ model: 'sim-verifier', messages: prompt, temperature: 0 });
    const tuned = await client.chat.completions.create({ model: 'labeller', messages: prompt, temperature: 0 });
    expect(base.choices[0]?.message.content).toContain('## Step 1');
    expect(parseRewardModelOutput('prm', tuned.choices[0]?.message.content ?? '')).toMatchObject({ ok: true, steps: [{ index: 1 }] });
    expect(tuned.choices[0]?.message.content).not.toContain('## Step');
  });

  it('reads adapters through the injected reader', async () => {
    expect((await post('load_lora_adapter', { lora_name: 'strict', lora_path: 'mem://strict' })).status).toBe(200);
    expect((await client.models.list()).data.find((m) => m.id === 'strict')).toMatchObject({ parent: 'sim-policy' });
  });
});
