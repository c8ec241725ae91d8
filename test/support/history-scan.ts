/**
 * Finds secrets in Temporal workflow histories: every event of every run reachable from a set of
 * workflows (child workflows and continued-as-new runs followed), scanned as the raw protobuf bytes
 * the server stores and as the JSON the CLI and Web UI show, for each secret in plain text, hex and
 * base64 (standard and URL-safe, at every byte alignment, so a secret inside a larger encoded blob
 * is found too).
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const { History: HistoryMessage, HistoryEvent: HistoryEventMessage } = proto.temporal.api.history.v1;
const { DescribeWorkflowExecutionResponse } = proto.temporal.api.workflowservice.v1;
const EventType = proto.temporal.api.enums.v1.EventType;

/** One run of a workflow: its ID and run ID. */
export interface RunRef {
  workflowId: string;
  runId: string;
}

/** A run's history as fetched from the server. */
export interface FetchedHistory extends RunRef {
  workflowType: string;
  events: HistoryEvent[];
  /** Run IDs of its children and its continuation, as its events name them. */
  next: RunRef[];
}

/** Where a secret was found. */
export interface SecretFinding {
  secret: string;
  /** How it was written: plain, hex, base64, base64url. */
  form: string;
  /** Which bytes: `proto` (the event's protobuf encoding), `json` (its JSON form) or `describe`. */
  in: 'proto' | 'json' | 'describe';
  workflowId: string;
  runId: string;
  workflowType: string;
  eventId?: string;
  eventType?: string;
}

/** Every way `value` can appear in bytes: plain, hex, and base64 / base64url at each of the 3 alignments. */
export function secretForms(value: string): { form: string; needle: string }[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms: { form: string; needle: string }[] = [
    { form: 'plain', needle: value },
    { form: 'hex', needle: bytes.toString('hex') },
  ];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // Characters that carry bits of the prefix or of whatever follows differ from blob to blob: cut them.
    const start = [0, 2, 3][offset]!;
    const end = Math.floor(((offset + bytes.length) * 8) / 6);
    const needle = encoded.slice(start, end);
    forms.push({ form: `base64@${offset}`, needle });
    forms.push({ form: `base64url@${offset}`, needle: needle.replaceAll('+', '-').replaceAll('/', '_') });
  }
  // Short secrets would match by chance in encoded data; the tests use long ones.
  return forms.filter((f, i) => f.needle.length >= 12 && forms.findIndex((g) => g.needle === f.needle) === i);
}

/** Every finding of every secret form in `haystack` (bytes or text). */
export function findSecrets(haystack: Uint8Array | string, secrets: Record<string, string>): { secret: string; form: string }[] {
  const buf = typeof haystack === 'string' ? Buffer.from(haystack, 'utf8') : Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  const found: { secret: string; form: string }[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    for (const { form, needle } of secretForms(value)) {
      if (buf.indexOf(needle, 0, 'utf8') >= 0) found.push({ secret: name, form });
    }
  }
  return found;
}

/** The JSON the CLI and the Web UI show for an event, with each payload's data also decoded as text. */
export function eventJson(event: HistoryEvent): string {
  const object = HistoryEventMessage.toObject(HistoryEventMessage.fromObject(event), { longs: String, enums: String, bytes: String, defaults: false });
  const decoded: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.data === 'string' && o.metadata && typeof o.metadata === 'object') decoded.push(Buffer.from(o.data, 'base64').toString('utf8'));
      Object.values(o).forEach(visit);
    }
  };
  visit(object);
  return JSON.stringify({ event: object, decodedPayloads: decoded });
}

/** All events of one run (every page). */
export async function fetchHistory(client: Client, ref: RunRef): Promise<FetchedHistory> {
  const events: HistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: ref.workflowId, runId: ref.runId },
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const next: RunRef[] = [];
  for (const e of events) {
    const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
    if (child?.workflowId && child.runId) next.push({ workflowId: child.workflowId, runId: child.runId });
    const continued = e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (continued) next.push({ workflowId: ref.workflowId, runId: continued });
  }
  return { ...ref, workflowType: started?.workflowType?.name ?? '?', events, next };
}

/** Every run reachable from `roots` (and any `extra` runs, e.g. from a visibility listing), each fetched once. */
export async function collectHistories(client: Client, roots: readonly RunRef[]): Promise<FetchedHistory[]> {
  const seen = new Set<string>();
  const out: FetchedHistory[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const ref = queue.shift()!;
    const key = `${ref.workflowId}\u0000${ref.runId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const h = await fetchHistory(client, ref);
    out.push(h);
    queue.push(...h.next);
  }
  return out;
}

/** Scans every event of `histories` (protobuf bytes and JSON) and each run's description for `secrets`. */
export async function scanHistories(client: Client, histories: readonly FetchedHistory[], secrets: Record<string, string>): Promise<SecretFinding[]> {
  const findings: SecretFinding[] = [];
  for (const h of histories) {
    const run = { workflowId: h.workflowId, runId: h.runId, workflowType: h.workflowType };
    // The whole history as the server serves it, then event by event to say where.
    const whole = HistoryMessage.encode(HistoryMessage.fromObject({ events: h.events } as History)).finish();
    const inWhole = findSecrets(whole, secrets);
    for (const event of h.events) {
      const where = { ...run, eventId: String(event.eventId), eventType: EventType[event.eventType ?? 0] ?? String(event.eventType) };
      const bytes = HistoryEventMessage.encode(HistoryEventMessage.fromObject(event)).finish();
      for (const f of findSecrets(bytes, secrets)) findings.push({ ...f, in: 'proto', ...where });
      for (const f of findSecrets(eventJson(event), secrets)) findings.push({ ...f, in: 'json', ...where });
    }
    // A secret split across events would be missed event by event.
    for (const f of inWhole) if (!findings.some((g) => g.workflowId === h.workflowId && g.runId === h.runId && g.secret === f.secret && g.form === f.form)) findings.push({ ...f, in: 'proto', ...run });
    const described = await client.workflowService.describeWorkflowExecution({ namespace: client.options.namespace, execution: { workflowId: h.workflowId, runId: h.runId } });
    const describedBytes = DescribeWorkflowExecutionResponse.encode(DescribeWorkflowExecutionResponse.fromObject(described)).finish();
    for (const f of findSecrets(describedBytes, secrets)) findings.push({ ...f, in: 'describe', ...run });
  }
  return findings;
}

/** One line per finding, for a failure message. */
export function formatFindings(findings: readonly SecretFinding[]): string {
  return findings.map((f) => `${f.secret} (${f.form}) in ${f.in} of ${f.workflowType} ${f.workflowId} run ${f.runId}${f.eventId ? ` event ${f.eventId} ${f.eventType}` : ''}`).join('\n');
}
