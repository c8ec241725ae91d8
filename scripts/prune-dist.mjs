#!/usr/bin/env node
/**
 * After `tsc -p tsconfig.build.json`: keeps in dist/ only what the npm package needs, so `files`
 * can say `dist/`. tsc emits every file of its program, and the client's types reach every
 * workflow and activity (`SparkResult<'rlTrain'>` is read off the workflow's signature), so dist/
 * first holds JavaScript of workflows and activities that no shipped module runs. Kept: the
 * JavaScript the entry points import at run time (statically or by a literal `import('…')`), and
 * the declarations their declarations reference. Plain node (no tsx): it runs in `prepack`.
 *
 * Prints the packages the kept files import; a bare import that is not in package.json
 * `dependencies` fails the build (the installed package would not find it).
 */
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
/** What the package runs: the client entry, the CLI, and the run report the CLI loads on demand. */
const ENTRIES = ['client/index.js', 'cli/spark.js'];

// Statements at a line's start (`import … from '…'`, `export … from '…'`, `import '…'`), so a
// comment quoting one does not count, and `import('…')` with a literal (declarations: `import("…").T`).
const SPECIFIERS = [/^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];

function walk(entries, map) {
  const kept = new Set();
  const packages = new Map();
  const queue = entries.map((e) => join(dist, e));
  while (queue.length) {
    const file = queue.pop();
    if (kept.has(file)) continue;
    if (!existsSync(file)) throw new Error(`${relative(root, file)} is imported but was not built`);
    kept.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of SPECIFIERS.flatMap((re) => [...text.matchAll(re)])) {
      if (spec.startsWith('.')) queue.push(map(resolve(dirname(file), spec)));
      else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        const name = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
        packages.set(name, [...(packages.get(name) ?? []), relative(dist, file)]);
      }
    }
  }
  return { kept, packages };
}

const js = walk(ENTRIES, (f) => f);
const dts = walk(ENTRIES.map((e) => e.replace(/\.js$/, '.d.ts')), (f) => f.replace(/\.js$/, '.d.ts'));

function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmdirSync(path);
    } else if (!js.kept.has(path) && !dts.kept.has(path)) {
      rmSync(path);
    }
  }
}
prune(dist);

const { dependencies = {}, devDependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const missing = [...js.packages].filter(([name]) => !(name in dependencies));
// Declarations may name dev-only packages' types; the consumer's skipLibCheck does not hide a missing one, so list them.
const typeOnly = [...dts.packages.keys()].filter((name) => !(name in dependencies) && !name.startsWith('@types/'));
console.error(`[build] dist/: ${js.kept.size} modules, ${dts.kept.size} declaration files; runs on ${[...js.packages.keys()].sort().join(', ')}`);
if (typeOnly.length) console.error(`[build] declarations also name ${typeOnly.join(', ')} (${typeOnly.map((n) => (n in devDependencies ? 'a dev dependency' : 'not a dependency')).join(', ')})`);
if (missing.length) {
  console.error(`[build] shipped modules import packages that are not dependencies: ${missing.map(([n, f]) => `${n} (${f.join(', ')})`).join('; ')}`);
  process.exit(1);
}
