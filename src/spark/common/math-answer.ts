/**
 * Final-answer checking for math problems (RLVR rewards, evaluation accuracy): take the last
 * `\boxed{…}`, normalise the LaTeX a model writes around an answer, and compare by mathematical
 * equivalence rather than by string equality.
 *
 * Parsing and equivalence are done by the Compute Engine (`@cortex-js/compute-engine`, MIT): it
 * reads LaTeX into MathJSON and decides equality of numbers (exact rationals, radicals, π, complex
 * numbers, bases such as `52_8`), intervals, sets, tuples, matrices, and identities in free
 * variables (`(x+1)^2` ≡ `x^2+2x+1`, by sampling then symbolic proof). This module only adds what
 * the library cannot know: the surface noise of answers (units, `\text{}`, `$`, degrees, percent,
 * thousands separators, `x =`), answers listed without brackets (order-free), `\pm`, and plain
 * text answers. Input the library cannot parse is compared as normalised strings.
 *
 * Import cost: the library is about 7 MB of JavaScript (~0.3 s to import); the engine is built on
 * first comparison (~0.2 s). A comparison takes about 1–20 ms, identities up to ~100 ms. Workflow
 * code must not import this module: it is for activities and clients.
 */
import { ComputeEngine } from '@cortex-js/compute-engine';
import { extractLastBoxed } from './formats.js';

/** Wall-clock guard for one library comparison; a pathological answer (`\sum_{n=1}^{10^9} n`) is then unequal, not a hang. */
const COMPARISON_TIME_LIMIT_MS = 1_000;
/** Longer answers are compared as strings: no real final answer is this long, and parse time grows with length. */
const MAX_LIBRARY_ANSWER_CHARS = 600;

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

/**
 * Content of the last `\boxed{…}` or `\fbox{…}` (balanced braces), or null when there is none.
 * Also accepts the brace-less `\boxed 5` that some models write, when no braced box exists.
 */
export function extractBoxedAnswer(text: string): string | null {
  const braced = extractLastBoxed(text);
  if (braced !== null) return braced;
  const bare = [...text.matchAll(/\\(?:boxed|fbox)\s+([^\s${}\\]+)/g)].at(-1);
  return bare ? (bare[1] ?? null) : null;
}

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/** Replaces every `\name{content}` (balanced braces) of the given commands; `skip` also drops that many characters after it. */
function replaceCommandGroups(s: string, names: readonly string[], replace: (content: string, after: string) => { text: string; skip?: number }): string {
  const opener = new RegExp(`\\\\(?:${names.join('|')})(?![a-zA-Z])\\s*\\{`, 'g');
  let out = '';
  let from = 0;
  let m: RegExpExecArray | null;
  while ((m = opener.exec(s)) !== null) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < s.length && depth > 0; i++) {
      if (s[i] === '\\') i++;
      else if (s[i] === '{') depth++;
      else if (s[i] === '}') depth--;
    }
    if (depth !== 0) break;
    const { text, skip = 0 } = replace(s.slice(m.index + m[0].length, i - 1), s.slice(i));
    out += s.slice(from, m.index) + text;
    from = i + skip;
    opener.lastIndex = from;
  }
  return out + s.slice(from);
}

const TEXT_COMMANDS = ['text', 'textrm', 'textnormal', 'mbox', 'mathrm', 'textup', 'textsf', 'texttt', 'textit'];
const STYLE_COMMANDS = ['textbf', 'mathbf', 'mathit', 'mathsf', 'bm', 'boldsymbol', 'mathnormal', 'operatorname', 'boxed', 'fbox'];
/** A unit's power right after the unit (`\mbox{ cm}^2`), removed with the unit. */
const UNIT_POWER_RE = /^\s*\^\s*(?:\{\s*[23]\s*\}|[23])/;
/** Words that join several answers inside `\text{}`: they become list commas. */
const JOINING_WORDS_RE = /^\s*(?:or|and|,)\s*$/i;

/** Drops `\text{…}` groups that hang on a mathematical answer (units, words); keeps their text when that is all there is. */
function handleTextGroups(s: string): string {
  const joined = replaceCommandGroups(s, TEXT_COMMANDS, (content) => ({ text: JOINING_WORDS_RE.test(content) ? ',' : `\\text{${content}}` }));
  const withoutText = replaceCommandGroups(joined, TEXT_COMMANDS, (_content, after) => {
    const power = UNIT_POWER_RE.exec(after);
    return { text: ' ', skip: power ? power[0].length : 0 };
  });
  if (/[0-9a-zA-Z]/.test(withoutText.replace(/\\[a-zA-Z]+/g, (cmd) => (cmd === '\\pi' || cmd === '\\infty' ? 'x' : '')))) return withoutText;
  return replaceCommandGroups(joined, TEXT_COMMANDS, (content) => ({ text: content }));
}

/** Two-letter units; longer trailing words (`dollars`, `inches`, `apples`) are dropped without a list. */
const SHORT_UNITS = new Set(['cm', 'mm', 'km', 'ft', 'in', 'yd', 'mi', 'kg', 'mg', 'lb', 'oz', 'ml', 'hr', 'am', 'pm']);
/** Trailing unit or noun after a number (`5 cm`, `18 dollars`, `864 inches^2`, `\frac{1}{2} cup`). */
const TRAILING_WORDS_RE = /^(.*?[\d}])\s+([a-zA-Z]{2,})((?:\s+[a-zA-Z]+)*)\.?\s*(?:\^\s*(?:\{\s*[23]\s*\}|[23]))?\s*$/;

function dropTrailingWords(s: string): string {
  const m = TRAILING_WORDS_RE.exec(s);
  if (!m) return s;
  const head = m[1] ?? '';
  const word = m[2] ?? '';
  if (word.length === 2 && !SHORT_UNITS.has(word.toLowerCase())) return s; // `3 xy` is algebra
  // Only after a number-like head: `2k apples` or `\sin x` are not a number with a unit.
  return /[a-zA-Z]/.test(head.replace(/\\(?:frac|sqrt|pi|cdot|times)(?![a-zA-Z])/g, '')) ? s : head;
}

/** A variable on the left of `=` or `\in` (`x = 3`, `y=2x+3`, `x \in [-2,7]`, `a_1 = 5`) is not part of the answer. */
const LEADING_VARIABLE_RE = /^[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?(?:=|\\in(?![a-zA-Z]))/;

function dropLeadingVariable(s: string): string {
  if (!LEADING_VARIABLE_RE.test(s)) return s;
  const rest = s.replace(LEADING_VARIABLE_RE, '');
  return rest.includes('=') ? s : rest;
}

/** Removes spaces, except one that ends a command before a letter (`\cot x` must not become `\cotx`). */
function removeSpaces(s: string): string {
  return s.replace(/(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9])/g, '$1\u0000').replace(/\s+/g, '').replace(/\u0000/g, ' ');
}

/**
 * The answer without the surface noise models and datasets put around it: `$`, `\left`/`\right`,
 * thin spaces, spaces, `\text{}` units and words (kept when the answer is only text), degrees,
 * percent, `\dfrac`/`\tfrac`, thousands separators, a trailing period, a leading `x =`, an outer
 * `\boxed{}`, and a multiple-choice `(C)` written as `C`.
 */
export function normalizeAnswer(answer: string): string {
  let s = answer.trim();
  s = s.replace(/[−–]/g, '-').replace(/×/g, '\\times ').replace(/·/g, '\\cdot ').replace(/π/g, '\\pi ').replace(/∞/g, '\\infty ').replace(/°/g, '^\\circ');
  s = replaceCommandGroups(s, STYLE_COMMANDS, (content) => ({ text: content }));
  s = s.replace(/\\displaystyle(?![a-zA-Z])/g, '');
  s = s.replace(/\\\$/g, '').replace(/\$/g, '');
  s = s.replace(/\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])\s*\.?/g, '');
  // `\\` (a matrix row break) is kept; `\,` `\!` `\ ` and friends are spacing.
  s = s.replace(/\\\\|\\[!,;:> ]|~|\\q?quad(?![a-zA-Z])|\\thinspace(?![a-zA-Z])/g, (m) => (m === '\\\\' ? m : ' '));
  s = s.replace(/\\[dt]frac(?![a-zA-Z])/g, '\\frac');
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])/g, '');
  s = s.replace(/\\%|%|\\percent(?![a-zA-Z])/g, '');
  s = handleTextGroups(s);
  s = dropTrailingWords(s.trim());
  s = s.replace(/\{,\}/g, ',');
  s = removeSpaces(s);
  s = s.replace(/\.+$/, '');
  if (/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  s = dropLeadingVariable(s);
  const choice = /^\(([A-Ea-e])\)$/.exec(s);
  if (choice) s = (choice[1] ?? '').toUpperCase();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Equivalence
// ---------------------------------------------------------------------------------------------

let engine: ComputeEngine | undefined;

function computeEngine(): ComputeEngine {
  engine ??= new ComputeEngine();
  return engine;
}

/** Splits at commas outside every bracket; `(1,2]` and `\{1,2\}` stay whole. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') {
      i++;
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** `\{a, b\}` → its elements, when the braces enclose the whole answer. */
function setElements(s: string): string[] | null {
  if (!s.startsWith('\\{') || !s.endsWith('\\}')) return null;
  const inner = s.slice(2, -2);
  let depth = 0;
  for (let i = 0; i < inner.length; i++) {
    if (inner.startsWith('\\{', i)) depth++;
    else if (inner.startsWith('\\}', i)) {
      if (--depth < 0) return null; // `\{1\} \cup \{2\}`: not one set
    }
  }
  return splitTopLevel(inner);
}

/** `1 \pm \sqrt{19}` → `1+\sqrt{19}` and `1-\sqrt{19}`; items without `\pm` stay as they are. */
function expandPlusMinus(item: string): string[] {
  const m = /\\(pm|mp)(?![a-zA-Z])/.exec(item);
  if (!m) return [item];
  const [first, second] = m[1] === 'pm' ? ['+', '-'] : ['-', '+'];
  const before = item.slice(0, m.index);
  const after = item.slice(m.index + m[0].length);
  return [...expandPlusMinus(before + first + after), ...expandPlusMinus(before + second + after)];
}

/**
 * The values an answer stands for: several when it lists values without brackets (`1, -2`),
 * is a set (`\{1, 2\}`) or holds `\pm`, which are then compared without regard to order.
 */
function answerItems(normalized: string): string[] {
  const items = setElements(normalized) ?? splitTopLevel(normalized);
  return items.map((item) => dropLeadingVariable(item)).filter((item) => item !== '').flatMap(expandPlusMinus);
}

/** The library's verdict on two single values: true/false, or null when either does not parse. */
function libraryEquivalent(a: string, b: string): boolean | null {
  if (a.length > MAX_LIBRARY_ANSWER_CHARS || b.length > MAX_LIBRARY_ANSWER_CHARS) return null;
  let scoped: ComputeEngine | undefined;
  try {
    const ce = computeEngine();
    // Each comparison in its own scope: symbols the parser declares (`f` as a function) must not leak into the next.
    ce.pushScope();
    scoped = ce;
    return ce.withTimeLimit(COMPARISON_TIME_LIMIT_MS, () => {
      const left = ce.parse(a);
      const right = ce.parse(b);
      if (!left.isValid || !right.isValid) return null;
      if (left.isEqual(right) === true) return true;
      if (left.unknowns.length === 0 && right.unknowns.length === 0) return false;
      return left.isIdenticallyEqual(right) === true;
    });
  } catch {
    return null;
  } finally {
    scoped?.popScope();
  }
}

/** Plain words (`Evelyn`, `east`, `even`): compared case-insensitively, never as products of variables. */
function isPlainText(s: string): boolean {
  return /^[a-zA-Z][a-zA-Z']*[a-zA-Z]$/.test(s) && s.length >= 3;
}

/** `A \cup B` → its parts, split outside brackets (a single value has no top-level commas of its own). */
function unionParts(s: string): string[] {
  return splitTopLevel(s.replace(/\\cup(?![a-zA-Z])/g, ','));
}

function singleValueEquivalent(a: string, b: string): boolean {
  if (a === b) return true;
  if (isPlainText(a) || isPlainText(b)) return a.toLowerCase() === b.toLowerCase();
  if (libraryEquivalent(a, b) === true) return true;
  // The library compares unions part by part in order; a union of the same sets in another order is the same set.
  const leftParts = unionParts(a);
  const rightParts = unionParts(b);
  return (leftParts.length > 1 || rightParts.length > 1) && sameMultiset(leftParts, rightParts);
}

/** Every item of `a` matches a distinct item of `b` (order-free). Lists are short, so a plain search is enough. */
function sameMultiset(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const used = new Array<boolean>(b.length).fill(false);
  const match = (i: number): boolean => {
    if (i === a.length) return true;
    for (let j = 0; j < b.length; j++) {
      if (used[j] || !singleValueEquivalent(a[i]!, b[j]!)) continue;
      used[j] = true;
      if (match(i + 1)) return true;
      used[j] = false;
    }
    return false;
  };
  return match(0);
}

/**
 * Whether two final answers are mathematically the same: `0.5`, `\frac12`, `1/2`; `\sqrt{8}` and
 * `2\sqrt{2}`; `(1,2]` and `(1, 2]` (open and closed ends must match); tuples in order; sets and
 * bare lists in any order; `x = 3` and `3`; `5\text{ cm}` and `5`; expressions equal as identities.
 * Never throws: what the library cannot parse is compared as normalised strings.
 */
export function answersEquivalent(a: string, b: string): boolean {
  let left = '';
  let right = '';
  try {
    left = normalizeAnswer(a);
    right = normalizeAnswer(b);
    if (left === right) return left !== '';
    if (left === '' || right === '') return false;
    if (isPlainText(left) && isPlainText(right)) return left.toLowerCase() === right.toLowerCase();
    const leftItems = answerItems(left);
    const rightItems = answerItems(right);
    if (leftItems.length === 1 && rightItems.length === 1) return singleValueEquivalent(leftItems[0]!, rightItems[0]!);
    return sameMultiset(leftItems, rightItems);
  } catch {
    return left !== '' && left === right;
  }
}

/** How an answer is compared: by the library (every value parses and equals itself there) or as normalised text. For reports on datasets. */
export function answerComparisonMode(answer: string): 'library' | 'text' {
  const items = answerItems(normalizeAnswer(answer));
  if (items.length === 0) return 'text';
  return items.every((item) => !isPlainText(item) && libraryEquivalent(item, item) === true) ? 'library' : 'text';
}
