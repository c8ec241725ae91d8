/** Reading a run's config file for `spark start`: YAML or JSON, errors naming the file, line and column. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';

/** A config file that cannot be read or parsed; the message names the file and where. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

/** Parses `text` as JSON (`.json`) or YAML (anything else; YAML also reads JSON). */
export function parseConfigText(text: string, file: string): unknown {
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ConfigFileError(`${file}: not valid JSON: ${(err as Error).message}`);
    }
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const at = first.linePos?.[0];
    throw new ConfigFileError(`${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  return doc.toJS() as unknown;
}

/** Reads and parses a config file; `-` reads standard input. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const value = parseConfigText(text, file);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigFileError(`${file}: expected one object (the workflow's input), got ${Array.isArray(value) ? 'a list' : value === null ? 'nothing' : typeof value}`);
  }
  return value;
}
