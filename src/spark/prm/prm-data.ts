/**
 * SPARK stage 2 training data: stage-1 label lines → chat-format SFT examples for a generative
 * reward model in one of the three output styles (ORM, PRM, PRM-CoT). Pure: the activity reads
 * the labels dataset and writes the JSONL; this decides what goes in and counts what was dropped.
 */
import type { AggregationMethod } from '../labels/aggregation.js';
import type { ChatMessage } from '../../core/inference/chat.js';
import type { RewardModelStyle } from '../common/formats.js';
import { parseVerification, renderOrmAnswer, renderPrmLabels } from '../common/formats.js';
import type { LabelLine, StoredLabels } from '../labels/labels.js';
import { buildPrmMessages } from '../common/prompts.js';
import { hashParts } from '../../core/random.js';

/** How the data is built from the labels. */
export interface PrmDataOptions {
  method: AggregationMethod;
  style: RewardModelStyle;
  /**
   * `none` keeps the classes as labelled; `outcome` drops solutions of the larger outcome class
   * (Yes or No), chosen by a seeded hash, until both are equal.
   */
  balance: 'none' | 'outcome';
  /**
   * Drop solutions whose votes agree less than this with the method's labels: the smallest share,
   * over the outcome and every step up to the first error, of valid verifications on the winning
   * side. 0 keeps everything; 1 keeps only unanimous ones.
   */
  minAgreement: number;
  /**
   * PRM-CoT trains on a verification text. `agreeing` (default) uses it only when its labels are
   * the method's labels (an exact vote target or a merged critique); `closest` also takes the
   * nearest disagreeing one.
   */
  cotTargets: 'agreeing' | 'closest';
  seed: number;
}

/** One SFT example: the reward-model prompt, the answer to learn, and where it came from. */
export interface PrmExample {
  messages: ChatMessage[];
  meta: { problemId: string; solutionIndex: number; outcome: boolean; firstErrorStep: number; method: AggregationMethod; style: RewardModelStyle };
}

/** What was kept and why the rest was dropped. */
export interface PrmDataCounts {
  input: number;
  kept: number;
  dropped: { unlabelled: number; noTarget: number; lowAgreement: number; balance: number };
  /** Kept examples by outcome label. */
  classes: { yes: number; no: number };
}

type Labelled = Extract<StoredLabels, { ok: true }>;

/** The weakest agreement of the votes with the labels, over the outcome and the steps that decide them. */
export function voteAgreement(line: LabelLine, labels: Labelled): number {
  const share = (a: number, b: number): number => (a + b === 0 ? 0 : a / (a + b));
  const { yes, no } = line.votes.outcome;
  let weakest = labels.outcome ? share(yes, no) : share(no, yes);
  const last = labels.firstErrorStep === -1 ? labels.stepLabels.length - 1 : labels.firstErrorStep;
  for (let i = 0; i <= last; i++) {
    const v = line.votes.steps[i] ?? { correct: 0, incorrect: 0 };
    weakest = Math.min(weakest, labels.stepLabels[i] ? share(v.correct, v.incorrect) : share(v.incorrect, v.correct));
  }
  return weakest;
}

/** The answer the reward model learns, or null when the style needs a text the labels lack. */
export function prmTarget(style: RewardModelStyle, labels: Labelled, cotTargets: PrmDataOptions['cotTargets']): string | null {
  switch (style) {
    case 'orm': return renderOrmAnswer(labels.outcome);
    case 'prm': return renderPrmLabels(labels.stepLabels, labels.outcome);
    case 'prm-cot': {
      const { text, rule } = labels.target;
      if (text === null) return null;
      if (rule === 'exact' || rule === 'merged' || cotTargets === 'closest') return text;
      // A closest target disagrees with the labels somewhere; learning it would teach other labels.
      return null;
    }
  }
}

/** Builds the examples of one method and style from label lines, in input order. */
export function buildPrmExamples(lines: readonly LabelLine[], options: PrmDataOptions): { examples: PrmExample[]; counts: PrmDataCounts } {
  const counts: PrmDataCounts = { input: lines.length, kept: 0, dropped: { unlabelled: 0, noTarget: 0, lowAgreement: 0, balance: 0 }, classes: { yes: 0, no: 0 } };
  let examples: PrmExample[] = [];
  for (const line of lines) {
    const labels = line.labels[options.method];
    if (!labels?.ok) {
      counts.dropped.unlabelled++;
      continue;
    }
    if (options.minAgreement > 0 && voteAgreement(line, labels) < options.minAgreement) {
      counts.dropped.lowAgreement++;
      continue;
    }
    const target = prmTarget(options.style, labels, options.cotTargets);
    if (target === null || (options.style === 'prm-cot' && !parseVerification(target).ok)) {
      counts.dropped.noTarget++;
      continue;
    }
    const prompt = buildPrmMessages({ question: line.question, steps: line.steps, answer: line.answer, style: options.style });
    examples.push({
      messages: [...prompt, { role: 'assistant', content: target }],
      meta: {
        problemId: line.problemId,
        solutionIndex: line.solutionIndex,
        outcome: labels.outcome,
        firstErrorStep: labels.firstErrorStep,
        method: options.method,
        style: options.style,
      },
    });
  }
  if (options.balance === 'outcome') {
    const before = examples.length;
    examples = balanceOutcomes(examples, options.seed);
    counts.dropped.balance = before - examples.length;
  }
  counts.kept = examples.length;
  for (const e of examples) counts.classes[e.meta.outcome ? 'yes' : 'no']++;
  return { examples, counts };
}

/** Keeps every example of the smaller outcome class and as many of the larger, chosen by seeded hash; order is kept. */
function balanceOutcomes(examples: readonly PrmExample[], seed: number): PrmExample[] {
  const yes = examples.filter((e) => e.meta.outcome);
  const no = examples.filter((e) => !e.meta.outcome);
  const [larger, smaller] = yes.length >= no.length ? [yes, no] : [no, yes];
  const rank = (e: PrmExample): string => hashParts(seed, e.meta.problemId, e.meta.solutionIndex);
  const chosen = [...larger].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0)).slice(0, smaller.length);
  const keep = new Set([...smaller, ...chosen]);
  return examples.filter((e) => keep.has(e));
}
