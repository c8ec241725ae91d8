import { createServer } from 'node:net';

export { repoRoot } from '../../src/cli/local-stack.js';

/** Credentials of the throwaway versitygw the suite starts. */
export const TEST_S3_KEYS = { AWS_ACCESS_KEY_ID: 'sparktest', AWS_SECRET_ACCESS_KEY: 'sparktestsecret' } as const;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
