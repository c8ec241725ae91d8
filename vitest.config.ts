import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own name means its sources here (its export map points at the build in dist/,
  // which test/package/ packs and installs like a user would).
  resolve: { alias: [{ find: /^spark-temporal$/, replacement: fileURLToPath(new URL('./src/client/index.ts', import.meta.url)) }] },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: files run in forks, a couple at a time, each with its own worker and task queues.
    pool: 'forks',
    maxWorkers: 2,
  },
});
