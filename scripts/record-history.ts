/**
 * Saves a workflow's event history as a replay fixture:
 *   npx tsx scripts/record-history.ts <workflow-id> <fixture-name> [--run-id <id>]
 * Reads TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (default: the local stack). The fixture goes to
 * test/fixtures/histories/<fixture-name>.binpb (the History protobuf, so no JSON conversion is
 * involved); test/workflows/replay.test.ts replays every fixture against the current workflow code,
 * so a change that would break running workflows fails there and needs `patched()` first.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { 'run-id': { type: 'string' } } });
const [workflowId, name] = positionals;
if (!workflowId || !name) throw new Error('usage: record-history.ts <workflow-id> <fixture-name> [--run-id <id>]');
const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233' });
try {
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE || 'default' });
  const history = await client.workflow.getHandle(workflowId, values['run-id']).fetchHistory();
  const file = new URL(`../test/fixtures/histories/${name}.binpb`, import.meta.url);
  writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
  // Workflows derive child IDs and keys from their own ID, so replay needs the original one.
  const index = new URL('../test/fixtures/histories/index.json', import.meta.url);
  const ids = existsSync(index) ? (JSON.parse(readFileSync(index, 'utf8')) as Record<string, string>) : {};
  ids[name] = workflowId;
  writeFileSync(index, `${JSON.stringify(Object.fromEntries(Object.entries(ids).sort()), null, 2)}\n`);
  console.log(`wrote ${file.pathname} (${history.events?.length ?? 0} events)`);
} finally {
  await connection.close();
}
