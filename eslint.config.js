// Lint guards the Temporal sandbox: workflow code must stay deterministic and free of Node built-ins.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['.scratch/**', 'node_modules/', '.tools/', '.data/', '.models/', 'dist/', 'coverage/', 'trainer/.venv/'] },
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
    // Workflows run in Temporal's deterministic sandbox: no Node APIs, no I/O, activities by type only.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not allowed in workflow code.' })),
          patterns: [
            { group: ['**/activities', '**/activities/*'], allowTypeImports: true, message: 'Import activities as types only (proxyActivities).' },
            { group: ['**/backends/*', '**/sim/*', '@aws-sdk/*', 'openai'], message: 'Workflows do no I/O; call an activity.' },
            { group: ['@cortex-js/*', '**/domain/math-answer*'], message: 'Math answer checking is heavy and belongs in activities.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' }, { name: 'fetch', message: 'Workflows do no I/O; call an activity.' }, { name: 'process', message: 'No process access in workflows.' }],
    },
  },
);
