/**
 * Renderers and tolerant parsers for every text format the project exchanges with models.
 *
 * Parsers accept what real models write: `<think>` blocks, case and whitespace variations,
 * markdown bold in different places. Each parser says why it rejects a text.
 */

/** Removes reasoning blocks. An unclosed `<think>` hides everything after it; a stray `</think>` hides everything before it. */
export function stripThink(text: string): string {
  let out = text.replace(/<think>[\s\S]*?<\/think>/gi, '');
  const strayClose = out.search(/<\/think>/i);
  if (strayClose >= 0) out = out.slice(out.toLowerCase().lastIndexOf('</think>') + '</think>'.length);
  const open = out.search(/<think>/i);
  if (open >= 0) out = out.slice(0, open);
  return out;
}

/** Contents of every complete `\boxed{…}` (or `\fbox{…}`), left to right, with balanced braces. */
export function extractAllBoxed(text: string): string[] {
  const found: string[] = [];
  const opener = /\\(?:boxed|fbox)\s*\{/g;
  let m: RegExpExecArray | null;
  while ((m = opener.exec(text)) !== null) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < text.length && depth > 0; i++) {
      const ch = text[i];
      if (ch === '\\') i++; // skip escaped characters such as \{ and \}
      else if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth !== 0) break; // unterminated (e.g. a truncated response): nothing complete follows
    found.push(text.slice(m.index + m[0].length, i - 1));
    opener.lastIndex = i;
  }
  return found;
}

/** Content of the last complete `\boxed{…}`, or null. */
export function extractLastBoxed(text: string): string | null {
  return extractAllBoxed(text).at(-1) ?? null;
}

// ---------------------------------------------------------------------------------------------
// Policy responses
// ---------------------------------------------------------------------------------------------

/** A policy response split into its parts. */
export interface PolicyResponse {
  /** Step texts, trimmed, in order. */
  steps: string[];
  /** Content of the first `<answer>…</answer>`, trimmed, or null if there is none. */
  answerBlock: string | null;
  /** Every `\boxed{}` content up to the end of the first `</answer>` (the whole text if none). */
  boxed: string[];
  /** Everything after the first `</answer>` ('' when there is no `</answer>`). */
  trailing: string;
}

/** What a policy response is made of, for {@link renderPolicyResponse}. */
export interface PolicyResponseParts {
  steps: readonly string[];
  /** The final answer; rendered as `<answer>\boxed{answer}</answer>`. */
  answer: string;
  /** Text appended after `</answer>`. */
  trailing?: string;
}

/** Writes a response in the SPARK policy format. */
export function renderPolicyResponse(parts: PolicyResponseParts): string {
  const steps = parts.steps.map((s) => `<step>${s}</step>`).join('\n');
  return `${steps}\n<answer>\\boxed{${parts.answer}}</answer>${parts.trailing ?? ''}`;
}

const STEP_MARKER_RE = /^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*step[ \t]*(\d+)[ \t]*(?:\*\*)?[ \t]*[:.](?:[ \t]*\*\*)?/gim;

/** Splits a free-form solution on "Step k:" markers, else on blank lines. */
function splitPlainSolution(body: string): string[] {
  const markers = [...body.matchAll(STEP_MARKER_RE)];
  if (markers.length > 0) {
    return markers
      .map((m, i) => body.slice((m.index) + m[0].length, markers[i + 1]?.index ?? body.length).trim())
      .filter((s) => s.length > 0);
  }
  return body.split(/\n[ \t]*\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Splits a policy response into steps, answer block, boxed answers and trailing text.
 * `<step>` tags are used when present; otherwise "Step k:" markers or blank lines split
 * the text before `<answer>` (real models often answer that way).
 */
export function parsePolicyResponse(text: string): PolicyResponse {
  const body = stripThink(text);
  const close = /<\/answer>/i.exec(body);
  const main = close ? body.slice(0, close.index + close[0].length) : body;
  const trailing = close ? body.slice(close.index + close[0].length) : '';
  const answer = /<answer>([\s\S]*?)<\/answer>/i.exec(main);
  const answerOpen = main.search(/<answer>/i);
  const beforeAnswer = answerOpen >= 0 ? main.slice(0, answerOpen) : main;
  const tagged = [...beforeAnswer.matchAll(/<step>([\s\S]*?)<\/step>/gi)].map((m) => (m[1] ?? '').trim());
  return {
    steps: tagged.length > 0 ? tagged : splitPlainSolution(beforeAnswer),
    answerBlock: answer ? (answer[1] ?? '').trim() : null,
    boxed: extractAllBoxed(main),
    trailing,
  };
}

// ---------------------------------------------------------------------------------------------
// Verifications (the SPARK verifier format, also the PRM-CoT output)
// ---------------------------------------------------------------------------------------------

/** The correctness label of one step; `index` is the 1-based step number as written. */
export interface StepLabel {
  index: number;
  correct: boolean;
}

/** A parsed verification, or why it could not be parsed. */
export type VerificationParse =
  | { ok: true; steps: StepLabel[]; outcome: boolean }
  | { ok: false; reason: string };

/** One step of a verification to render. */
export interface VerificationStep {
  title: string;
  analysis: string;
  correct: boolean;
}

/** The question every verdict line asks. */
export const VERDICT_QUESTION = 'Is the answer correct (Yes/No)?';

/** `**Verification: Is the answer correct (Yes/No)? Yes**` */
export function renderVerdictLine(outcome: boolean): string {
  return `**Verification: ${VERDICT_QUESTION} ${outcome ? 'Yes' : 'No'}**`;
}

/** `**This step is correct.**` or `**This step is incorrect.**` */
export function renderStepLabel(correct: boolean): string {
  return correct ? '**This step is correct.**' : '**This step is incorrect.**';
}

/** Writes a verification in the exact SPARK verifier format. */
export function renderVerification(v: { steps: readonly VerificationStep[]; outcome: boolean }): string {
  const steps = v.steps.map((s, i) => `## Step ${i + 1}: ${s.title}\n${s.analysis}\n${renderStepLabel(s.correct)}`);
  return [...steps, renderVerdictLine(v.outcome)].join('\n\n');
}

const VERDICT_RE = /verification[\s*:]*is\s+the\s+answer\s+correct\s*\(\s*yes\s*\/\s*no\s*\)\s*\??[\s*:]*(yes|no)\b/gi;
const HEADING_RE = /^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*step[ \t]*(\d+)[ \t]*(?:\*\*)?[ \t]*[:.]/gim;
const LABEL_RE = /this\s+step\s+is\s+(not\s+)?(correct|incorrect)\b/gi;

/** The last verdict in a text and where it starts, or null. */
function lastVerdict(text: string): { outcome: boolean; at: number } | null {
  const m = [...text.matchAll(VERDICT_RE)].at(-1);
  return m ? { outcome: (m[1] ?? '').toLowerCase() === 'yes', at: m.index } : null;
}

/** Checks that step numbers run 1..n. */
function numberingProblem(numbers: readonly number[]): string | null {
  const bad = numbers.findIndex((n, i) => n !== i + 1);
  return bad < 0 ? null : `step headings are not numbered 1..${numbers.length} (found ${numbers.join(', ')})`;
}

/** Parses the SPARK verifier format: `## Step k:` sections with labels, then the verdict line. */
export function parseVerification(text: string): VerificationParse {
  const body = stripThink(text);
  const verdict = lastVerdict(body);
  if (!verdict) return { ok: false, reason: `missing the final verdict line "Verification: ${VERDICT_QUESTION} Yes|No"` };
  const stepsPart = body.slice(0, verdict.at);
  const headings = [...stepsPart.matchAll(HEADING_RE)];
  if (headings.length === 0) return { ok: false, reason: 'no "## Step k:" headings found' };
  const numbering = numberingProblem(headings.map((h) => Number(h[1])));
  if (numbering) return { ok: false, reason: numbering };
  const steps: StepLabel[] = [];
  for (const [i, h] of headings.entries()) {
    const section = stepsPart.slice(h.index + h[0].length, headings[i + 1]?.index ?? stepsPart.length);
    const label = [...section.matchAll(LABEL_RE)].at(-1);
    if (!label) return { ok: false, reason: `step ${i + 1} has no "This step is correct/incorrect" label` };
    steps.push({ index: i + 1, correct: !label[1] && (label[2] ?? '').toLowerCase() === 'correct' });
  }
  return { ok: true, steps, outcome: verdict.outcome };
}

/** 0-based position of the first incorrect label, or -1 if every step is correct. */
export function firstIncorrectStep(labels: readonly { correct: boolean }[]): number {
  return labels.findIndex((l) => !l.correct);
}

// ---------------------------------------------------------------------------------------------
// Critiques (meta-critique of a verification)
// ---------------------------------------------------------------------------------------------

/**
 * A critique of one verification. Its text format:
 *
 * ```
 * ### Re-check of Step k
 * <independent re-derivation of the step and how it compares with the verification>
 * … one section per step …
 * **Missed errors: Step 3, Step 5**            (or "none")
 * **False alarms: none**                       (or "Step 2, …")
 * **Verdict consistent with step labels: Yes** (Yes/No)
 * **Critique: Does the verification need revision (Yes/No)? Yes**
 * ```
 */
export interface Critique {
  /** 1-based steps the verification marked correct although they are wrong. */
  missedErrors: number[];
  /** 1-based steps the verification marked incorrect although they are right. */
  falseAlarms: number[];
  /** Whether the verification's Yes/No agrees with its own step labels. */
  verdictConsistent: boolean;
  needsRevision: boolean;
}

/** A parsed critique, or why it could not be parsed. */
export type CritiqueParse = ({ ok: true } & Critique) | { ok: false; reason: string };

/** The closing line of a critique. */
export const CRITIQUE_QUESTION = 'Does the verification need revision (Yes/No)?';

function renderStepList(steps: readonly number[]): string {
  return steps.length === 0 ? 'none' : steps.map((k) => `Step ${k}`).join(', ');
}

/** Writes a critique; `notes[i]` is the re-check text of step i + 1. */
export function renderCritique(critique: Critique, notes: readonly string[]): string {
  const sections = notes.map((note, i) => `### Re-check of Step ${i + 1}\n${note}`);
  return [
    ...sections,
    `**Missed errors: ${renderStepList(critique.missedErrors)}**`,
    `**False alarms: ${renderStepList(critique.falseAlarms)}**`,
    `**Verdict consistent with step labels: ${critique.verdictConsistent ? 'Yes' : 'No'}**`,
    `**Critique: ${CRITIQUE_QUESTION} ${critique.needsRevision ? 'Yes' : 'No'}**`,
  ].join('\n\n');
}

function parseStepList(line: string): number[] {
  if (/^\W*none\b/i.test(line)) return [];
  return [...line.matchAll(/\d+/g)].map((m) => Number(m[0]));
}

/** Parses the critique format documented on {@link Critique}. */
export function parseCritique(text: string): CritiqueParse {
  const body = stripThink(text);
  const missed = [...body.matchAll(/missed\s+errors?\s*\**\s*:\s*\**([^\n]*)/gi)].at(-1);
  const alarms = [...body.matchAll(/false\s+alarms?\s*\**\s*:\s*\**([^\n]*)/gi)].at(-1);
  const consistent = [...body.matchAll(/verdict\s+consistent[^:\n]*:[\s*]*(yes|no)\b/gi)].at(-1);
  const revision = [...body.matchAll(/need\s+revision\s*\(\s*yes\s*\/\s*no\s*\)\s*\??[\s*:]*(yes|no)\b/gi)].at(-1);
  if (!revision) return { ok: false, reason: `missing the closing line "${CRITIQUE_QUESTION} Yes|No"` };
  if (!missed) return { ok: false, reason: 'missing the "Missed errors:" line' };
  if (!alarms) return { ok: false, reason: 'missing the "False alarms:" line' };
  return {
    ok: true,
    missedErrors: parseStepList(missed[1] ?? ''),
    falseAlarms: parseStepList(alarms[1] ?? ''),
    verdictConsistent: consistent ? (consistent[1] ?? '').toLowerCase() === 'yes' : true,
    needsRevision: (revision[1] ?? '').toLowerCase() === 'yes',
  };
}

// ---------------------------------------------------------------------------------------------
// Generative reward models (ORM, PRM, PRM-CoT)
// ---------------------------------------------------------------------------------------------

/** The three reward-model output styles of SPARK stage 2. */
export type RewardModelStyle = 'orm' | 'prm' | 'prm-cot';

/** A parsed reward-model answer; `steps` is null for the ORM style. */
export type RewardModelParse =
  | { ok: true; outcome: boolean; steps: StepLabel[] | null }
  | { ok: false; reason: string };

/** ORM output: `Yes` or `No`. */
export function renderOrmAnswer(outcome: boolean): string {
  return outcome ? 'Yes' : 'No';
}

/** PRM output: one `Step k: Correct|Incorrect` line per step, then the verdict line. */
export function renderPrmLabels(labels: readonly boolean[], outcome: boolean): string {
  const lines = labels.map((correct, i) => `Step ${i + 1}: ${correct ? 'Correct' : 'Incorrect'}`);
  return [...lines, renderVerdictLine(outcome)].join('\n');
}

function parseOrmAnswer(text: string): RewardModelParse {
  const body = stripThink(text).trim();
  const verdict = lastVerdict(body);
  if (verdict) return { ok: true, outcome: verdict.outcome, steps: null };
  const boxed = extractLastBoxed(body);
  const word = /^[\W_]*(yes|no)\b/i.exec(boxed ?? body);
  if (!word) return { ok: false, reason: 'the answer is neither Yes nor No' };
  return { ok: true, outcome: (word[1] ?? '').toLowerCase() === 'yes', steps: null };
}

const PRM_LINE_RE = /^[ \t]*(?:[-*][ \t]+)?(?:\*\*)?[ \t]*step[ \t]*(\d+)[ \t]*(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?[ \t]*(correct|incorrect)\b/gim;

function parsePrmLabels(text: string): RewardModelParse {
  const body = stripThink(text);
  const verdict = lastVerdict(body);
  if (!verdict) return { ok: false, reason: `missing the final verdict line "Verification: ${VERDICT_QUESTION} Yes|No"` };
  const lines = [...body.slice(0, verdict.at).matchAll(PRM_LINE_RE)];
  if (lines.length === 0) return { ok: false, reason: 'no "Step k: Correct|Incorrect" lines found' };
  const numbering = numberingProblem(lines.map((l) => Number(l[1])));
  if (numbering) return { ok: false, reason: numbering };
  const steps = lines.map((l, i) => ({ index: i + 1, correct: (l[2] ?? '').toLowerCase() === 'correct' }));
  return { ok: true, outcome: verdict.outcome, steps };
}

/** Parses a reward model's answer in the given style. */
export function parseRewardModelOutput(style: RewardModelStyle, text: string): RewardModelParse {
  switch (style) {
    case 'orm': return parseOrmAnswer(text);
    case 'prm': return parsePrmLabels(text);
    case 'prm-cot': return parseVerification(text);
  }
}

// ---------------------------------------------------------------------------------------------
// ProcessBench
// ---------------------------------------------------------------------------------------------

/** The index a ProcessBench critic answered in its last `\boxed{}`, or null if it gave none. */
export function parseProcessBenchAnswer(text: string): number | null {
  const boxed = extractLastBoxed(stripThink(text));
  if (boxed === null) return null;
  const cleaned = boxed.replace(/\\text\s*\{([^}]*)\}/g, '$1').replace(/[\s$]/g, '');
  return /^-?\d+$/.test(cleaned) ? Number(cleaned) : null;
}
