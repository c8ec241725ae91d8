import { defineConfig } from 'vitest/config';

/**
 * The production-profile fault test (`npm run test:production`): one long file on the profile that
 * infra/production/profile.sh brings up (PostgreSQL, the Temporal server, versitygw, the sandbox,
 * worker processes). It is not part of `npm test` (its files do not end in `.test.ts`): it runs the
 * pipeline twice and waits out a 30 s S3 outage and a Temporal restart.
 */
export default defineConfig({
  test: {
    // The manifest check is quick and also part of `npm test`.
    include: ['test/production/**/*.prod.ts', 'test/production/k8s-manifests.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 20 * 60_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
