// The layers of the tree, lowest first. A file may import its own layer's modules (same group)
// and any lower layer's, never a higher one: the shared core knows no stage, a stage knows only
// the stages it builds on, and nothing under src/ knows the sandbox.
import { dirname, relative, resolve } from 'node:path';

export const LAYERS = [
  { name: 'core', groups: ['src/core/'] },
  { name: 'spark/common', groups: ['src/spark/common/'] },
  { name: 'spark/labels (stage 1)', groups: ['src/spark/labels/'] },
  { name: 'spark/prm (stage 2)', groups: ['src/spark/prm/'] },
  { name: 'spark/rl (stage 3)', groups: ['src/spark/rl/'] },
  { name: 'spark/co-evolve', groups: ['src/spark/co-evolve/'] },
  { name: 'spark/pipeline', groups: ['src/spark/pipeline/', 'src/spark/input-schemas.ts'] },
  { name: 'registries', groups: ['src/workflows/', 'src/activities/'] },
  { name: 'workers', groups: ['src/workers/'] },
  { name: 'client', groups: ['src/client/'] },
  { name: 'cli', groups: ['src/cli/'] },
  { name: 'sandbox', groups: ['sandbox/'] },
];

/** Layer index and group of a path relative to the repo root, or null outside the layered tree. */
export function layerOf(path) {
  for (let i = 0; i < LAYERS.length; i++) {
    for (const group of LAYERS[i].groups) if (path === group || path.startsWith(group)) return { index: i, group };
  }
  return null;
}

const noUpwardImports = {
  meta: {
    type: 'problem',
    docs: { description: 'No import runs up a layer (src/core < src/spark/<stage> in method order < registries < workers < client < cli < sandbox).' },
    schema: [],
  },
  create(context) {
    const root = context.cwd;
    const file = relative(root, context.filename).split('\\').join('/');
    const from = layerOf(file);
    if (!from) return {};
    function check(node, source) {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = relative(root, resolve(dirname(context.filename), source)).split('\\').join('/').replace(/\.js$/, '.ts');
      const to = layerOf(target);
      if (!to) return;
      const up = to.index > from.index;
      const sideways = to.index === from.index && to.group !== from.group;
      if (up || sideways) {
        context.report({
          node,
          message: `${file} (${LAYERS[from.index].name}) must not import ${target} (${LAYERS[to.index].name}): imports run down the layers only (eslint/layers.js).`,
        });
      }
    }
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node.source, node.source.value),
    };
  },
};

export default { rules: { 'no-upward-imports': noUpwardImports } };
