/**
 * Stage 1 as a plain async script, the way one would write it without a control plane: every
 * problem at once, `n` per request, at most `--in-flight` requests to the server, the same
 * prompts, parsers and votes as `synthesizeLabels`, nothing stored until the end (a crash loses
 * everything). The benchmark's baseline (b).
 *
 *   npx tsx bench/plain-driver.ts --base-url URL --problems FILE.jsonl [--solutions 8] [--verifications 16] [--in-flight 64] [--seed 1]
 *
 * Prints one JSON line: wall seconds, requests, samples, labels lines, CPU seconds, peak RSS.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { Semaphore } from '../src/core/concurrency.js';
import { parsePolicyResponse, parseVerification } from '../src/spark/common/formats.js';
import { tallyVotes } from '../src/spark/labels/aggregation.js';
import { methodLabels, storedLabels, voteLabels, voteMethodsFor } from '../src/spark/labels/labels.js';
import { buildGeneratorMessages, buildVerifierMessages } from '../src/spark/common/prompts.js';
import { SynthesizeLabelsInputSchema } from '../src/spark/labels/input.js';

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    problems: { type: 'string' },
    solutions: { type: 'string', default: '8' },
    verifications: { type: 'string', default: '16' },
    'in-flight': { type: 'string', default: '64' },
    seed: { type: 'string', default: '1' },
  },
});
const M = Number(args.solutions);
const K = Number(args.verifications);
const seed = Number(args.seed);
// The defaults synthesizeLabels applies (sampling, methods, tie rules), so both do the same work.
const config = SynthesizeLabelsInputSchema.parse({
  runName: 'plain',
  dataset: { uri: 'plain.jsonl' },
  generator: { endpoint: { baseURL: args['base-url']! }, model: 'gen', sampling: { temperature: 1 } },
  verifier: { endpoint: { baseURL: args['base-url']! }, model: 'ver' },
});
const questions = readFileSync(args.problems!, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { question: string }).question);
const openai = new OpenAI({ baseURL: args['base-url'], apiKey: 'EMPTY', maxRetries: 2 });
const limit = new Semaphore(Number(args['in-flight']));
let requests = 0;
let samples = 0;

async function complete(model: string, messages: ReturnType<typeof buildGeneratorMessages>, n: number, sampling: typeof config.generator.sampling): Promise<string[]> {
  const r = await limit.run(() => openai.chat.completions.create({
    model, messages, n, temperature: sampling.temperature, top_p: sampling.topP, max_tokens: sampling.maxTokens, seed,
  }));
  requests += 1;
  samples += r.choices.length;
  return r.choices.map((c) => c.message.content ?? '');
}

const started = Date.now();
const cpuAtStart = process.cpuUsage();
const voteMethods = voteMethodsFor(config.methods);
const lines = await Promise.all(questions.map(async (question, problemIndex) => {
  const solutions = await complete('gen', buildGeneratorMessages(question), M, config.generator.sampling);
  return Promise.all(solutions.map(async (text, solutionIndex) => {
    const parsed = parsePolicyResponse(text);
    const view = { question, steps: parsed.steps, answer: parsed.answerBlock, trailing: parsed.trailing };
    const verifications = await complete('ver', buildVerifierMessages(view), K, config.verifier.sampling);
    const drawn = verifications.map((v, i) => ({ sampleIndex: i, text: v, parsed: parseVerification(v) }));
    const votes = voteLabels(voteMethods, drawn, parsed.steps.length, config.aggregation);
    const labels = methodLabels(config.methods, votes, {}, config.aggregation.consistency);
    const tally = tallyVotes(drawn, parsed.steps.length);
    return JSON.stringify({ problemIndex, solutionIndex, steps: parsed.steps, votes: tally, labels: Object.fromEntries(Object.entries(labels).map(([m, l]) => [m, storedLabels(l)])) });
  }));
}));
const wallS = (Date.now() - started) / 1000;
writeFileSync(join(tmpdir(), `plain-labels-${process.pid}.jsonl`), lines.flat().join('\n') + '\n');
const cpu = process.cpuUsage(cpuAtStart);
console.log(JSON.stringify({
  wallS,
  requests,
  samples,
  lines: lines.flat().length,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
}));
