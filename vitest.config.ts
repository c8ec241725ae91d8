import { defineConfig } from 'vitest/config';

export default defineConfig({
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
