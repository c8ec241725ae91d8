import { z } from 'zod';

/**
 * Which fields of a JSONL row hold what. Defaults fit GSM8K, MATH500 and plain `{question}` rows;
 * no reference answer is needed (SPARK stage 1 is reference-free).
 */
export const FieldMapSchema = z.object({
  question: z.string().default('question'),
  /** Row id field; default: `id` when rows have one, else the row's line (`row-<n>`). */
  id: z.string().optional(),
  /** Reference answer or worked solution, kept only for evaluation and baselines. */
  answer: z.string().optional(),
});
export type FieldMap = z.infer<typeof FieldMapSchema>;

/** A problem as the pipeline sees it. */
export interface Problem {
  id: string;
  question: string;
  reference?: string;
}

/** Parses one JSONL line; errors name the line and the field so people can fix their file. */
export function parseProblemLine(line: string, lineNo: number, fields: FieldMap): Problem {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    throw new Error(`line ${lineNo}: not valid JSON`);
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`line ${lineNo}: expected a JSON object`);
  const record = row as Record<string, unknown>;
  const question = record[fields.question];
  if (typeof question !== 'string' || question.trim() === '') {
    throw new Error(`line ${lineNo}: field "${fields.question}" (the question) must be a non-empty string`);
  }
  const rawId = fields.id ? record[fields.id] : typeof record.id === 'string' || typeof record.id === 'number' ? record.id : undefined;
  if (fields.id && (rawId === undefined || rawId === null || rawId === '')) {
    throw new Error(`line ${lineNo}: field "${fields.id}" (the id) is missing`);
  }
  const reference = fields.answer ? record[fields.answer] : undefined;
  return {
    id: rawId !== undefined ? String(rawId) : `row-${lineNo}`,
    question,
    ...(reference !== undefined && reference !== null ? { reference: String(reference) } : {}),
  };
}

/** Rows [offset, offset+limit) of a JSONL text, skipping blank lines; line numbers are 1-based. */
export function parseProblems(text: string, fields: FieldMap, offset = 0, limit = Infinity): Problem[] {
  const out: Problem[] = [];
  const lines = text.split('\n');
  let row = 0;
  for (let i = 0; i < lines.length && out.length < limit; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (row++ < offset) continue;
    out.push(parseProblemLine(line, i + 1, fields));
  }
  return out;
}
