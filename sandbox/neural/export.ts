/**
 * Exports the neural world's text to JSONL for the trainer (`make-world-models` runs this):
 *
 *   tsx sandbox/neural/export.ts --out DIR --seed S --policy N --verifier N --heldout N [--prm-share F] [--problems JSON]
 *
 * Writes, in DIR:
 * - `policy-train.jsonl`: `{role, messages, completion}`: solutions, and a `--prm-share` of PRM-CoT answers;
 * - `verifier-train.jsonl`: verifications, half of them of wrong solutions;
 * - `heldout-problems.jsonl`: `{id, question, answer, messages}` (the generator prompt) on problems no training line uses;
 * - `heldout-verify.jsonl`: `{messages, labels}` (the verifier prompt; `labels[i]`: step i + 1 is correct);
 * - `heldout-prm.jsonl`: the same solutions behind the PRM-CoT prompt;
 * - `export.json`: the settings (problems, seed, counts), which `world.json` repeats.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildGeneratorMessages, buildPrmMessages, buildVerifierMessages } from '../../src/spark/common/prompts.js';
import { formatValue } from '../arith.js';
import type { TextExample, WorldProblemSettings } from './world-text.js';
import {
  DEFAULT_WORLD_PROBLEMS, exampleRng, prmExample, solveExample, verifyExample, worldProblems, writeSolution, writeWrongSolution,
} from './world-text.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
    policy: { type: 'string', default: '20000' },
    verifier: { type: 'string', default: '20000' },
    heldout: { type: 'string', default: '200' },
    'prm-share': { type: 'string', default: '0.15' },
    'error-share': { type: 'string', default: '0.5' },
    problems: { type: 'string' },
  },
});
if (!values.out) throw new Error('--out DIR is required');
const out = values.out;
const seed = values.seed;
const count = (name: 'policy' | 'verifier' | 'heldout'): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${values[name]}`);
  return n;
};
const share = (name: 'prm-share' | 'error-share'): number => {
  const x = Number(values[name]);
  if (!(x >= 0 && x <= 1)) throw new Error(`--${name}: expected a fraction in [0, 1], got ${values[name]}`);
  return x;
};
const settings: WorldProblemSettings = { ...DEFAULT_WORLD_PROBLEMS, ...(values.problems ? JSON.parse(values.problems) as WorldProblemSettings : {}) };
const prmShare = share('prm-share');
const errorShare = share('error-share');

mkdirSync(out, { recursive: true });
const jsonl = (name: string, rows: readonly unknown[]) => writeFileSync(join(out, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

// Held-out problems first, so training draws around them: no training line shows a held-out question.
const heldout = worldProblems(settings, `world-${seed}-heldout`, count('heldout'));
const excluded = new Set(heldout.map((p) => p.question));

const policyProblems = worldProblems(settings, `world-${seed}-policy`, count('policy'), excluded);
jsonl('policy-train.jsonl', policyProblems.map((p, i): TextExample => {
  const rng = exampleRng(seed, 'policy', i);
  return rng.bernoulli(prmShare) ? prmExample(p, rng, errorShare) : solveExample(p, rng);
}));

const verifierProblems = worldProblems(settings, `world-${seed}-verifier`, count('verifier'), excluded);
jsonl('verifier-train.jsonl', verifierProblems.map((p, i) => verifyExample(p, exampleRng(seed, 'verifier', i), errorShare)));

jsonl('heldout-problems.jsonl', heldout.map((p) => ({ id: p.id, question: p.question, answer: p.answer, messages: buildGeneratorMessages(p.question) })));
const judged = heldout.map((p, i) => {
  const rng = exampleRng(seed, 'heldout-judged', i);
  const solution = rng.bernoulli(0.5) ? writeWrongSolution(p, rng) : writeSolution(p, rng);
  const answer = `\\boxed{${formatValue(solution.steps.at(-1)?.result ?? p.start)}}`;
  const labels = solution.stepTexts.map((_, k) => solution.firstError < 0 || k < solution.firstError);
  return { question: p.question, steps: solution.stepTexts, answer, labels };
});
jsonl('heldout-verify.jsonl', judged.map((j) => ({ messages: buildVerifierMessages(j), labels: j.labels })));
jsonl('heldout-prm.jsonl', judged.map((j) => ({ messages: buildPrmMessages({ question: j.question, steps: j.steps, style: 'prm-cot' }), labels: j.labels })));
writeFileSync(join(out, 'export.json'), JSON.stringify({ seed, problems: settings, prmShare, errorShare, counts: { policy: policyProblems.length, verifier: verifierProblems.length, heldout: heldout.length } }, null, 2) + '\n');
