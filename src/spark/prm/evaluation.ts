/**
 * Evaluating a PRM or critic on ProcessBench: the prompt of a row in each style, reading one
 * sampled answer as a first-error prediction, the vote over samples, and the report.
 *
 * Pure: no Node built-ins, no I/O, so workflows, activities and CLIs share it.
 */
import type { ChatMessage } from '../../core/inference/chat.js';
import { firstIncorrectStep, parseProcessBenchAnswer, parseRewardModelOutput } from '../common/formats.js';
import type { EvaluationStyle } from './evaluate-prm.input.js';
import type { ProcessBenchReport } from './processbench.js';
import { formatProcessBenchTable, majorityFirstError, PROCESSBENCH_SPLITS, processBenchReport } from './processbench.js';
import { buildPrmMessages, buildProcessBenchMessages } from '../common/prompts.js';
import { hashParts } from '../../core/random.js';

/** One benchmark row as the evaluation needs it: where it came from, what is shown, the truth. */
export interface EvaluationRow {
  split: string;
  /** 0-based position in its split file (after `limit`). */
  index: number;
  id: string;
  problem: string;
  steps: string[];
  /** 0-based earliest wrong step, -1 when all are correct. */
  label: number;
}

/** The prompt of a row: ProcessBench's critic template, or SPARK's PRM template. */
export function evaluationMessages(style: EvaluationStyle, row: Pick<EvaluationRow, 'problem' | 'steps'>): ChatMessage[] {
  if (style === 'processbench') return buildProcessBenchMessages({ problem: row.problem, steps: row.steps });
  return buildPrmMessages({ question: row.problem, steps: row.steps, style });
}

/**
 * One sampled answer as a first-error prediction: the 0-based step index, -1 for "no error", or
 * null when the answer cannot be read in the style asked for (it then counts as wrong). For the
 * PRM styles the prediction is the first step labelled incorrect. Answers below -1 are not answers.
 */
export function parsePrediction(style: EvaluationStyle, text: string): number | null {
  if (style === 'processbench') {
    const index = parseProcessBenchAnswer(text);
    return index !== null && index >= -1 ? index : null;
  }
  const parsed = parseRewardModelOutput(style, text);
  if (!parsed.ok || parsed.steps === null) return null;
  return firstIncorrectStep(parsed.steps);
}

/** The prediction of a row from its samples' predictions: the majority (see {@link majorityFirstError}). */
export function votePrediction(predictions: readonly (number | null)[]): number | null {
  return majorityFirstError(predictions);
}

/**
 * Seed of a row's requests: fixed by the run's seed and the row's split and id, so a row asks
 * the same whichever chunk, worker or run it lands in (and hits the same stored samples).
 */
export function rowSeed(seed: number, split: string, id: string): number {
  return Number.parseInt(hashParts('evaluate-prm', seed, split, id).slice(0, 8), 16) % 2_147_483_647;
}

/** One line of the predictions output. */
export interface PredictionLine {
  split: string;
  index: number;
  id: string;
  label: number;
  /** The voted prediction; null when no sample could be read. */
  prediction: number | null;
  correct: boolean;
  /** Each sample's prediction, in sample order. */
  votes: (number | null)[];
  /** Samples that could not be read. */
  unparseable: number;
  /** Keys of the stored samples (model outputs) under the chat cache, for audit. */
  samples: string[];
}

/** A row's line from its samples' texts. */
export function predictionLine(style: EvaluationStyle, row: EvaluationRow, samples: readonly { key: string; text: string }[]): PredictionLine {
  const votes = samples.map((s) => parsePrediction(style, s.text));
  const prediction = votePrediction(votes);
  return {
    split: row.split,
    index: row.index,
    id: row.id,
    label: row.label,
    prediction,
    correct: prediction === row.label,
    votes,
    unparseable: votes.filter((v) => v === null).length,
    samples: samples.map((s) => s.key),
  };
}

/** What the model cost: requests answered, samples drawn new and read back from the store. */
export interface EvaluationCost {
  callsMade: number;
  samplesDrawn: number;
  samplesReused: number;
}

export const ZERO_COST: EvaluationCost = { callsMade: 0, samplesDrawn: 0, samplesReused: 0 };

export function addCost(a: EvaluationCost, b: EvaluationCost): EvaluationCost {
  return { callsMade: a.callsMade + b.callsMade, samplesDrawn: a.samplesDrawn + b.samplesDrawn, samplesReused: a.samplesReused + b.samplesReused };
}

/** Per split: rows without a readable answer and samples that could not be read. */
export interface UnparseableCounts {
  rows: number;
  samples: number;
}

/** The scores and how many answers could not be read, per split. */
export interface EvaluationReport {
  scores: ProcessBenchReport;
  unparseable: Record<string, UnparseableCounts>;
}

/**
 * Split order of reports: ProcessBench's four in their usual order, then other names in the
 * order given.
 */
export function orderSplits(names: readonly string[]): string[] {
  const known = PROCESSBENCH_SPLITS.filter((s) => names.includes(s));
  return [...known, ...names.filter((s) => !known.includes(s))];
}

/** Scores prediction lines with the ProcessBench metric, per split in `splits` order, plus the average. */
export function evaluationReport(lines: readonly Pick<PredictionLine, 'split' | 'label' | 'prediction' | 'unparseable'>[], splits: readonly string[]): EvaluationReport {
  const scores = processBenchReport(lines.map((l) => ({ split: l.split, label: l.label, prediction: l.prediction })), splits);
  const unparseable: Record<string, UnparseableCounts> = Object.fromEntries(scores.splits.map((s) => [s.split, { rows: 0, samples: 0 }]));
  for (const l of lines) {
    const u = unparseable[l.split]!;
    if (l.prediction === null) u.rows += 1;
    u.samples += l.unparseable;
  }
  return { scores, unparseable };
}

/** The report as markdown: a heading naming what was evaluated, the table, and unreadable answers. */
export function formatEvaluationReport(report: EvaluationReport, about: { model: string; style: EvaluationStyle; samples: number }): string {
  const voting = about.samples > 1 ? `, majority of ${about.samples} samples` : '';
  const lines = [`# ProcessBench: ${about.model} (${about.style} style${voting})`, '', formatProcessBenchTable(report.scores)];
  const unread = Object.entries(report.unparseable).filter(([, u]) => u.samples > 0);
  if (unread.length > 0) {
    const parts = unread.map(([split, u]) => `${split} ${u.samples} sample(s), ${u.rows} row(s) without an answer`);
    lines.push('', `Unreadable answers (scored as wrong): ${parts.join('; ')}.`);
  }
  return `${lines.join('\n')}\n`;
}
