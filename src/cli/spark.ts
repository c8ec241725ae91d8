/**
 * `spark`: start, find, follow and steer SPARK runs on any Temporal (local dev server, self-hosted,
 * Temporal Cloud). `npm run spark -- <command>`, `npx spark <command>` (package.json `bin`), or
 * `node --import tsx src/cli/spark.ts <command>`. `spark --help` lists the commands.
 *
 * Exit codes: 0 done, 1 the run failed or the request was refused, 2 bad command line or input.
 */
import { parseArgs } from 'node:util';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { resolveTemporalSettings, SparkClient, SparkInputError, SparkUpdateRefusedError } from '../client/spark-client.js';
import { localStackEnv } from './local-stack.js';
import { ConfigFileError } from './spark-config.js';
import type { CommandContext, CommandSpec } from './spark-commands.js';
import { commands, RefusedError, UsageError } from './spark-commands.js';

/** Flags every command takes; each overrides the environment variable beside it. */
const GLOBAL_OPTIONS = {
  address: { type: 'string', env: 'TEMPORAL_ADDRESS', help: 'Temporal frontend host:port (default 127.0.0.1:7233)' },
  namespace: { type: 'string', env: 'TEMPORAL_NAMESPACE', help: 'namespace (default `default`)' },
  'tls-cert': { type: 'string', env: 'TEMPORAL_TLS_CERT', help: 'client certificate file (mTLS)' },
  'tls-key': { type: 'string', env: 'TEMPORAL_TLS_KEY', help: 'client key file (mTLS)' },
  tls: { type: 'boolean', env: 'TEMPORAL_TLS', help: 'TLS without a client certificate' },
  'api-key': { type: 'string', env: 'TEMPORAL_API_KEY', help: 'API key (Temporal Cloud); prefer the variable, flags show in ps' },
  'ui-url': { type: 'string', env: 'TEMPORAL_UI_URL', help: 'Web UI base for links (default: the dev server UI, or cloud.temporal.io)' },
} as const;

const LOCAL_HELP = ['--local', 'fill in what is not set from the local stack (`spark stack up`): Temporal, S3 and its keys'];

function globalHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'spark <command> [options]: SPARK runs on Temporal',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
    '',
    globalOptionsHelp(),
    '',
    'spark <command> --help shows a command\'s options.',
  ].join('\n');
}

function globalOptionsHelp(): string {
  const rows = [...Object.entries(GLOBAL_OPTIONS).map(([name, o]) => [`--${name}${o.type === 'string' ? ' X' : ''}`, `${o.help} [${o.env}]`]), LOCAL_HELP];
  const width = Math.max(...rows.map(([f]) => f!.length));
  return ['global options (override the environment):', ...rows.map(([f, h]) => `  ${f!.padEnd(width)}  ${h}`)].join('\n');
}

function commandHelp(name: string, spec: CommandSpec): string {
  return [`usage: ${spec.usage}`, '', `${name}: ${spec.summary}`, ...(spec.details ? ['', spec.details] : []), '', globalOptionsHelp()].join('\n');
}

/** The environment with the global flags mapped onto TEMPORAL_*, as workers and the client read it. */
function envWithFlags(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // localStackEnv keeps whatever is already set and fills in the rest.
  const base = values.local ? { ...env, ...localStackEnv(env) } : env;
  const mapped: Record<string, string> = {};
  for (const [name, o] of Object.entries(GLOBAL_OPTIONS)) {
    const v = values[name];
    if (typeof v === 'string' && v !== '') mapped[o.env] = v;
    if (v === true) mapped[o.env] = 'true';
  }
  return { ...base, ...mapped };
}

export async function runSpark(argv: string[], io: { stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream; env: NodeJS.ProcessEnv }): Promise<number> {
  const out = (t: string) => void io.stdout.write(`${t}\n`);
  const note = (t: string) => void io.stderr.write(`${t}\n`);
  const name = argv.find((a) => !a.startsWith('-'));
  if (!name || name === 'help') {
    const topic = name === 'help' ? argv[argv.indexOf('help') + 1] : undefined;
    const spec = topic ? commands[topic] : undefined;
    out(spec ? commandHelp(topic!, spec) : globalHelp());
    return name || argv.some((a) => a === '--help' || a === '-h') ? 0 : 2;
  }
  const spec = commands[name];
  if (!spec) {
    note(`spark: unknown command '${name}'\n\n${globalHelp()}`);
    return 2;
  }
  const rest = argv.filter((a, i) => i !== argv.indexOf(name));
  const globalOptions = { ...Object.fromEntries(Object.entries(GLOBAL_OPTIONS).map(([k, o]) => [k, { type: o.type }])), help: { type: 'boolean' as const, short: 'h' }, local: { type: 'boolean' as const } };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: { ...globalOptions, ...spec.options }, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    note(`spark ${name}: ${(err as Error).message}\nusage: ${spec.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    out(commandHelp(name, spec));
    return 0;
  }
  if (parsed.positionals.length !== spec.positionals.length) {
    note(`spark ${name}: expected ${spec.positionals.length ? spec.positionals.map((p) => `<${p}>`).join(' ') : 'no arguments'}, got ${parsed.positionals.length ? parsed.positionals.map((p) => `'${p}'`).join(' ') : 'none'}\nusage: ${spec.usage}`);
    return 2;
  }

  const env = envWithFlags(parsed.values, io.env);
  let client: SparkClient | undefined;
  let settings: CommandContext['settings'] | undefined;
  const ctx: CommandContext = {
    command: name,
    args: parsed.positionals,
    flags: parsed.values,
    env,
    get settings() {
      settings ??= { ...resolveTemporalSettings({}, env), uiUrl: env.TEMPORAL_UI_URL || undefined };
      return settings;
    },
    async connect() {
      if (client) return client;
      const s = ctx.settings;
      try {
        client = await SparkClient.connect(s, { taskQueue: env.SPARK_TASK_QUEUE });
      } catch (err) {
        throw new Error(`cannot reach Temporal at ${s.address} (namespace ${s.namespace}${s.tls ? ', TLS' : ''}): ${(err as Error).message}\nset --address/TEMPORAL_ADDRESS, or start the local stack with \`spark stack up\``);
      }
      return client;
    },
    out,
    note,
    isTTY: Boolean(io.stdout.isTTY),
  };
  try {
    return await spec.run(ctx);
  } catch (err) {
    return reportError(name, spec, err, note);
  } finally {
    await client?.close();
  }
}

function reportError(name: string, spec: CommandSpec, err: unknown, note: (t: string) => void): number {
  if (err instanceof UsageError) {
    note(`spark ${name}: ${err.message}\nusage: ${spec.usage}`);
    return 2;
  }
  if (err instanceof SparkInputError || err instanceof ConfigFileError) {
    note(`spark ${name}: ${err.message}`);
    return 2;
  }
  if (err instanceof SparkUpdateRefusedError || err instanceof RefusedError) {
    note(`spark ${name}: refused: ${err.message}`);
    return 1;
  }
  if (err instanceof WorkflowNotFoundError) {
    note(`spark ${name}: no workflow '${err.workflowId}' in this namespace (spark list shows the runs)`);
    return 1;
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    note(`spark ${name}: a run with workflow ID '${err.workflowId}' is already going (spark status ${err.workflowId}); pass --attach to follow it or --workflow-id for a new one`);
    return 1;
  }
  note(`spark ${name}: ${(err as Error)?.message ?? String(err)}`);
  if (process.env.SPARK_DEBUG) note(String((err as Error)?.stack));
  return 1;
}

const code = await runSpark(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// Open gRPC channels must not keep a finished command alive (`spark worker` never gets here).
process.exit(code);
