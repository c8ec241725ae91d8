/**
 * Reads the public math sets (GSM8K, MATH500) from the shared datasets folder, which lies beside
 * the repo (`../shared/datasets`) and is never copied into it. `SPARK_DATASETS_DIR` or `dir` points
 * elsewhere; a clone elsewhere finds the machine's shared folder.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MathDatasetName, MathProblem } from '../spark/common/math-datasets.js';
import { MATH_DATASET_FILES, MathDatasetError, parseMathDataset } from '../spark/common/math-datasets.js';

/** The repo root, as in `src/cli/local-stack.ts` (this file is two folders below it too). */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Where the shared folder usually is when the repo is checked out elsewhere (e.g. a CI clone in /tmp). */
const WELL_KNOWN_DATASETS_DIR = '/work/shared/datasets';

/**
 * Where the datasets are read from: `dir`, else `SPARK_DATASETS_DIR`, else the first `shared/datasets`
 * beside the repo or one of its parent folders, else the machine's well-known shared folder.
 */
export function mathDatasetsDir(dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (dir || env.SPARK_DATASETS_DIR) return resolve(dir || env.SPARK_DATASETS_DIR!);
  for (let at = resolve(repoRoot, '..'); ; at = dirname(at)) {
    const candidate = join(at, 'shared', 'datasets');
    if (existsSync(candidate)) return candidate;
    if (dirname(at) === at) break;
  }
  return WELL_KNOWN_DATASETS_DIR;
}

export interface LoadMathDatasetOptions {
  /** The datasets folder (holding `gsm8k/` and `math500/`). */
  dir?: string;
  /** Read at most this many problems, from the start. */
  limit?: number;
}

/** Every problem of one math set, in file order, each with its gold final answer. */
export async function loadMathDataset(name: MathDatasetName, opts: LoadMathDatasetOptions = {}): Promise<MathProblem[]> {
  const path = join(mathDatasetsDir(opts.dir), MATH_DATASET_FILES[name]);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(err);
    throw new MathDatasetError(`${name}: cannot read ${path} (${reason}); set SPARK_DATASETS_DIR or pass dir`);
  }
  return parseMathDataset(name, text, opts.limit ?? Infinity);
}
