/**
 * A load server for benchmarks: OpenAI-compatible chat completions with `n`, a fixed latency
 * and a fixed number of slots (more requests wait in FIFO order), and answers that cost next
 * to nothing to make, so what is measured is the client, not the server.
 *
 *   npx tsx bench/load-server.ts --latency-ms 50 --slots 64 [--port 0]
 *
 * Prints `{"url": ...}` once listening. Answers are well-formed for stage 1: a generator gets
 * SPARK policy responses of 4 steps (different per seed and choice, so no two solutions share
 * a verification prompt), a verifier gets 4-step verifications in the SPARK format (a few
 * fixed variants, so the votes are not unanimous). `GET /stats` returns requests, samples,
 * peak concurrency and the process's CPU time; `POST /reset` zeroes them.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { ROLE_MARKERS } from '../src/spark/common/prompts.js';
import { renderPolicyResponse, renderVerification } from '../src/spark/common/formats.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '50' },
    slots: { type: 'string', default: '64' },
  },
});
const latencyMs = Number(args['latency-ms']);
const slots = Number(args.slots);

/** Verifications the verifier answers with, one per choice in turn. */
const VERIFICATIONS = [null, 2, null, 3, null].map((wrong) => renderVerification({
  steps: [1, 2, 3, 4].map((k) => ({
    title: `check the operation of step ${k}`,
    analysis: `The step applies the stated operation to the previous value; recomputing it gives the value the student wrote${wrong === k ? ', but the student wrote a different one' : ''}.`,
    correct: wrong === null || k < wrong,
  })),
  outcome: wrong === null,
}));

function solution(seed: number, choice: number): string {
  const a = 10 + ((seed + 7919 * choice) % 90);
  const b = 3 + (choice % 7);
  const steps = [
    `We start with ${a}.`,
    `Adding ${b} gives ${a} + ${b} = ${a + b}.`,
    `Multiplying by 3 gives ${a + b} × 3 = ${3 * (a + b)}.`,
    `Subtracting ${a} gives ${3 * (a + b)} - ${a} = ${2 * a + 3 * b}.`,
  ];
  return renderPolicyResponse({ steps, answer: String(2 * a + 3 * b) });
}

interface ChatBody {
  model: string;
  messages: { role: string; content: string }[];
  n?: number;
  seed?: number;
}

const stats = { requests: 0, samples: 0, inFlight: 0, peak: 0 };
const waiting: (() => void)[] = [];
let active = 0;
let nextId = 0;

function acquire(): Promise<void> {
  if (active < slots) {
    active += 1;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(resolve));
}
function release(): void {
  const next = waiting.shift();
  if (next) next();
  else active -= 1;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = JSON.parse(await readBody(req)) as ChatBody;
  const n = body.n ?? 1;
  const prompt = body.messages.map((m) => m.content).join('\n');
  const verifier = prompt.includes(ROLE_MARKERS.verifier);
  await acquire();
  stats.inFlight += 1;
  stats.peak = Math.max(stats.peak, stats.inFlight);
  try {
    await new Promise((r) => setTimeout(r, latencyMs));
  } finally {
    stats.inFlight -= 1;
    release();
  }
  const seed = body.seed ?? 0;
  const choices = Array.from({ length: n }, (_, i) => ({
    index: i,
    message: { role: 'assistant', content: verifier ? VERIFICATIONS[(seed + i) % VERIFICATIONS.length]! : solution(seed, i) },
    finish_reason: 'stop',
  }));
  stats.requests += 1;
  stats.samples += n;
  send(res, 200, {
    id: `load-${process.pid}-${nextId++}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices,
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  });
}

const server = createServer((req, res) => {
  const route = `${req.method} ${(req.url ?? '/').replace(/\/+$/, '')}`;
  const handle = async (): Promise<void> => {
    if (route === 'POST /v1/chat/completions') return chat(req, res);
    if (route === 'GET /stats') {
      const cpu = process.cpuUsage();
      return send(res, 200, { ...stats, latencyMs, slots, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    }
    if (route === 'POST /reset') {
      Object.assign(stats, { requests: 0, samples: 0, peak: stats.inFlight });
      return send(res, 200, { ok: true });
    }
    send(res, 404, { error: { message: `no route ${route}` } });
  };
  handle().catch((err: unknown) => send(res, 500, { error: { message: (err as Error).message } }));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(args.port), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}/v1` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
