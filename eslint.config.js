// Lint guards the architecture: imports run down the layers only (eslint/layers.js), and workflow
// code stays deterministic and free of Node built-ins (Temporal's workflow sandbox).
import tseslint from 'typescript-eslint';
import layers from './eslint/layers.js';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['.scratch/**', 'node_modules/', '.tools/', '.data/', '.models/', 'dist/', 'coverage/', 'trainer/.venv/', 'test/package/consumer/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      'no-restricted-syntax': 'off',
    },
  },
  {
    files: ['src/**/*.ts', 'sandbox/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/no-upward-imports': 'error' },
  },
  {
    // Workflows run in Temporal's deterministic sandbox: no Node APIs, no I/O, activities by type only.
    files: ['src/workflows/**/*.ts', 'src/**/*.workflow.ts', 'src/core/temporal/activity-presets.ts', 'src/core/temporal/validate.ts', 'src/core/temporal/search-attributes.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not allowed in workflow code.' })),
          patterns: [
            { group: ['**/activities', '**/activities.js', '**/*.activities.js', '**/activities/*', '**/core/trainer/activities*'], allowTypeImports: true, message: 'Import activities as types only (proxyActivities).' },
            {
              group: ['**/core/store/s3-*', '**/core/inference/client*', '**/core/inference/http-fetch*', '**/core/inference/sample-store*', '**/core/trainer/client*', '**/core/temporal/connection*', '**/sandbox/**', '@aws-sdk/*', 'openai'],
              message: 'Workflows do no I/O; call an activity.',
            },
            { group: ['@cortex-js/*', '**/common/math-answer*'], message: 'Math answer checking is heavy and belongs in activities.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' }, { name: 'fetch', message: 'Workflows do no I/O; call an activity.' }, { name: 'process', message: 'No process access in workflows.' }],
    },
  },
);
