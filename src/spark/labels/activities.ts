import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import type { AggregationMethod, CritiqueMethod, MergedVerification, SampledVerification } from './aggregation.js';
import { tallyVotes } from './aggregation.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { SamplingParams } from '../../core/inference/chat.js';
import type { Problem } from '../../core/store/dataset.js';
import { parsePolicyResponse, parseVerification } from '../common/formats.js';
import type { SynthesizeLabelsConfig } from './input.js';
import type { DrawDecision, LabelCounts, LabelLine } from './labels.js';
import {
  addCounts, CRITIQUE_BASE, critiqueSubject, isCritiqueMethod, methodLabels, nextDraw, shardCount, shardName, storedLabels, voteLabels, voteMethodsFor, ZERO_COUNTS,
} from './labels.js';
import { buildCriticMessages, buildGeneratorMessages, buildMergeMessages, buildVerifierMessages } from '../common/prompts.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import type { ObjectStore } from '../../core/store/s3-store.js';
import type { ActivityDeps, ChatClient } from '../../core/deps.js';
import { promptHash, SampleGroup, sampleWithRetry } from '../../core/inference/sample-store.js';
import { readProblems } from '../../core/store/load-dataset.js';
import { DatasetError, mapFailures } from '../../core/temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../../core/temporal/heartbeat.js';

/** What `prepareLabelInput` found in the dataset and where it put the shards. */
export interface PreparedLabelInput {
  datasetSha256: string;
  problems: number;
  shards: number;
  shardSize: number;
}

/** Where a shard's outputs go; every key is fixed by the run, so retries overwrite with the same bytes. */
export const labelKeys = {
  config: (prefix: string) => joinKey(prefix, 'config.json'),
  shardInput: (prefix: string, shard: number) => joinKey(prefix, 'input', `shard-${shardName(shard)}.jsonl`),
  problem: (prefix: string, problemIndex: number) => joinKey(prefix, 'problems', `${String(problemIndex).padStart(8, '0')}.jsonl`),
  /** The lines of problems [first, first + count), labelled by one `labelProblems` activity. */
  problems: (prefix: string, first: number, count: number) => joinKey(prefix, 'problems', `${String(first).padStart(8, '0')}-${count}.jsonl`),
  part: (prefix: string, shard: number) => joinKey(prefix, 'parts', `part-${shardName(shard)}.jsonl`),
  partInfo: (prefix: string, shard: number) => joinKey(prefix, 'parts', `part-${shardName(shard)}.info.json`),
  manifest: (prefix: string) => joinKey(prefix, 'manifest.json'),
};

/** A finished part of the labels dataset (one per shard). */
export interface LabelPart {
  shard: number;
  ref: ObjectRef;
  lines: number;
  counts: LabelCounts;
}

export interface ProblemLabelSummary {
  problemIndex: number;
  counts: LabelCounts;
}


/** Problems of shard files are small and read by every problem of the shard; keep a few in memory. */
const shardCache = new Map<string, Promise<Problem[]>>();
function readShard(store: ObjectStore, uri: string): Promise<Problem[]> {
  let p = shardCache.get(uri);
  if (!p) {
    p = store.getText(uri).then((t) => t.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Problem));
    p.catch(() => shardCache.delete(uri));
    shardCache.set(uri, p);
    if (shardCache.size > 64) shardCache.delete(shardCache.keys().next().value!);
  }
  return p;
}

/** Problem files a part's writer reads at once. */
const PART_READS_IN_FLIGHT = 32;

/** Counts what a sampling call cost. */
function cost(counts: LabelCounts, r: { callsMade: number; samplesReused: number; samples: { length: number } }, progress: { calls: number }): void {
  progress.calls += r.callsMade;
  counts.callsMade += r.callsMade;
  counts.samplesReused += r.samplesReused;
  counts.samplesDrawn += r.samples.length - r.samplesReused;
}

/** Activities of SPARK stage 1 (`synthesizeLabels` and its shards). */
export function createLabelActivities({ store, inference }: ActivityDeps) {
  /** Draws the verifications of one solution, round by round, as `nextDraw` decides. */
  async function verifySolution(
    client: ChatClient,
    config: SynthesizeLabelsConfig,
    messages: ReturnType<typeof buildVerifierMessages>,
    stepCount: number,
    counts: LabelCounts,
    signal: AbortSignal,
    progress: { calls: number },
    group: SampleGroup,
  ): Promise<{ drawn: SampledVerification[]; stop: Exclude<DrawDecision, { done: false }>['reason'] }> {
    const drawn: SampledVerification[] = [];
    const policy = {
      k: config.verificationsPerSolution,
      parseRetries: config.parseRetries,
      adaptive: config.adaptive,
      aggregation: config.aggregation,
    };
    const sampling: SamplingParams = { ...config.verifier.sampling, seed: config.seed };
    for (;;) {
      const decision = nextDraw(drawn, stepCount, policy);
      if (decision.done) return { drawn, stop: decision.reason };
      const r = await sampleWithRetry(store, { client, model: config.verifier.model, messages, sampling, indices: decision.indices, signal, group });
      cost(counts, r, progress);
      for (const s of r.samples) drawn.push({ sampleIndex: s.index, text: s.text, parsed: parseVerification(s.text) });
    }
  }

  /**
   * One problem end to end: M solutions, K verifications each (with parse retries and the
   * adaptive stop), the meta-critique calls the chosen methods need, and the labels of every
   * method. Every model output is stored content-addressed as it arrives.
   */
  async function labelOne(
    config: SynthesizeLabelsConfig,
    problem: Problem,
    problemIndex: number,
    progress: { phase: string; solutionsDone: number; calls: number },
    signal: AbortSignal,
  ): Promise<{ lines: LabelLine[]; counts: LabelCounts }> {
    const counts: LabelCounts = { ...ZERO_COUNTS, problems: 1 };
    const generator = inference(config.generator.endpoint, { maxInFlight: config.generator.maxInFlight });
    const verifier = inference(config.verifier.endpoint, { maxInFlight: config.verifier.maxInFlight });
    const criticRole = config.critic ?? { ...config.verifier, sampling: { ...config.verifier.sampling, temperature: 0 } };
    const critic = inference(criticRole.endpoint, { maxInFlight: criticRole.maxInFlight });
    const criticSampling: SamplingParams = { ...criticRole.sampling, seed: config.seed };

    const genMessages = buildGeneratorMessages(problem.question);
    const genSampling: SamplingParams = { ...config.generator.sampling, seed: config.seed };
    // The problem's requests (solutions, verifications, critiques) are stored together and
    // looked up with one LIST; the group is named by what the problem's first request asks.
    const group = new SampleGroup(promptHash(config.generator.model, genMessages, genSampling));
    const gen = await sampleWithRetry(store, {
      client: generator,
      model: config.generator.model,
      messages: genMessages,
      sampling: genSampling,
      indices: Array.from({ length: config.solutionsPerProblem }, (_, i) => i),
      signal,
      group,
    });
    cost(counts, gen, progress);
    progress.phase = 'verifying';
    const voteMethods = voteMethodsFor(config.methods);
    const critiqueMethods = config.methods.filter(isCritiqueMethod);

    const lines = await Promise.all(gen.samples.map(async (sample): Promise<LabelLine> => {
      const parsed = parsePolicyResponse(sample.text);
      const view = { question: problem.question, steps: parsed.steps, answer: parsed.answerBlock, trailing: parsed.trailing };
      const verifierMessages = buildVerifierMessages({ ...view, referenceAnswer: config.referenceGuided ? problem.reference : null });
      const { drawn, stop } = await verifySolution(verifier, config, verifierMessages, parsed.steps.length, counts, signal, progress, group);
      const votes = voteLabels(voteMethods, drawn, parsed.steps.length, config.aggregation);

      const merged: Partial<Record<CritiqueMethod, MergedVerification | null>> = {};
      await Promise.all(critiqueMethods.map(async (m) => {
        const subject = critiqueSubject(votes[CRITIQUE_BASE[m]]);
        if (subject === null) return;
        const one = { client: critic, model: criticRole.model, sampling: criticSampling, indices: [0], signal, group };
        const critique = await sampleWithRetry(store, { ...one, messages: buildCriticMessages({ ...view, verification: subject }) });
        cost(counts, critique, progress);
        const merge = await sampleWithRetry(store, {
          ...one,
          messages: buildMergeMessages({ ...view, verification: subject, critique: critique.samples[0]!.text }),
        });
        cost(counts, merge, progress);
        const text = merge.samples[0]!.text;
        merged[m] = { text, parsed: parseVerification(text) };
      }));

      const labels = methodLabels(config.methods, votes, merged, config.aggregation.consistency);
      const valid = drawn.filter((v) => v.parsed.ok).length;
      counts.solutions += 1;
      counts.verificationsValid += valid;
      counts.parseFailures += drawn.length - valid;
      if (stop === 'decided' || stop === 'confident') counts.stoppedEarly += 1;
      if (Object.values(labels).some((l) => !l.ok)) counts.unlabelled += 1;
      progress.solutionsDone += 1;
      const tally = tallyVotes(drawn, parsed.steps.length);
      return {
        problemIndex,
        problemId: problem.id,
        question: problem.question,
        ...(problem.reference !== undefined ? { reference: problem.reference } : {}),
        solutionIndex: sample.index,
        steps: parsed.steps,
        answer: parsed.answerBlock,
        verifications: { requested: config.verificationsPerSolution, drawn: drawn.length, valid, invalid: drawn.length - valid, stop },
        votes: { steps: tally.steps, outcome: tally.outcome },
        labels: Object.fromEntries(
          Object.entries(labels).map(([m, l]) => [m, storedLabels(l)]),
        ) as LabelLine['labels'],
      };
    }));
    return { lines, counts };
  }

  return {
    /**
     * Reads the dataset once, checks every row, and writes it as shard files of `shardSize`
     * problems plus the run's config, so each shard reads only its own problems.
     */
    async prepareLabelInput(input: { config: SynthesizeLabelsConfig; outputPrefix: string }): Promise<PreparedLabelInput> {
      return mapFailures(async () => {
        const { dataset, shards } = input.config;
        const { problems, sha256 } = await readProblems(store, dataset.uri, dataset);
        if (problems.length === 0) throw new DatasetError(`${dataset.uri}: no problems at offset ${dataset.offset}`);
        if (input.config.referenceGuided) {
          const missing = problems.find((p) => p.reference === undefined);
          if (missing) throw new DatasetError(`${dataset.uri}: problem ${missing.id} has no "${dataset.fields.answer}" (needed by referenceGuided)`);
        }
        const n = shardCount(problems.length, shards.size);
        for (let s = 0; s < n; s++) {
          const rows = problems.slice(s * shards.size, (s + 1) * shards.size);
          await store.put(labelKeys.shardInput(input.outputPrefix, s), rows.map((p) => JSON.stringify(p)).join('\n') + '\n', 'application/x-ndjson');
          Context.current().heartbeat({ shardsWritten: s + 1 });
        }
        await store.putJson(labelKeys.config(input.outputPrefix), input.config);
        return { datasetSha256: sha256, problems: problems.length, shards: n, shardSize: shards.size };
      });
    },

    /**
     * One problem end to end: M solutions, K verifications each (with parse retries and the
     * adaptive stop), the meta-critique calls the chosen methods need, and the labels of every
     * method, written as JSONL lines. Every model output is stored content-addressed as it
     * arrives, so a retry pays only for calls that had not finished.
     */
    async labelProblem(input: {
      config: SynthesizeLabelsConfig;
      outputPrefix: string;
      shard: number;
      row: number;
      problemIndex: number;
    }): Promise<ProblemLabelSummary> {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const problems = await readShard(store, labelKeys.shardInput(input.outputPrefix, input.shard));
        const problem = problems[input.row];
        if (!problem) throw new DatasetError(`shard ${input.shard} has no row ${input.row}`);
        const progress = { phase: 'generating', solutionsDone: 0, calls: 0 };
        const { lines, counts } = await withHeartbeat(
          () => labelOne(input.config, problem, input.problemIndex, progress, signal),
          () => progress,
        );
        await store.put(labelKeys.problem(input.outputPrefix, input.problemIndex), lines.map((l) => JSON.stringify(l)).join('\n') + '\n', 'application/x-ndjson');
        return { problemIndex: input.problemIndex, counts };
      });
    },

    /**
     * Several problems of a shard at once, each as `labelProblem` labels one, their lines in one
     * object. One activity per few problems keeps Temporal's share of the work (events,
     * persistence, worker round trips) small next to the model calls; the samples are stored
     * per request as they arrive, so a retry pays only for requests that had not finished.
     */
    async labelProblems(input: {
      config: SynthesizeLabelsConfig;
      outputPrefix: string;
      shard: number;
      /** Rows [firstRow, firstRow + count) of the shard, problems [firstProblem, firstProblem + count) of the run. */
      firstRow: number;
      firstProblem: number;
      count: number;
    }): Promise<{ counts: LabelCounts }> {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const problems = await readShard(store, labelKeys.shardInput(input.outputPrefix, input.shard));
        const rows = problems.slice(input.firstRow, input.firstRow + input.count);
        if (rows.length !== input.count) throw new DatasetError(`shard ${input.shard} has no rows ${input.firstRow}..${input.firstRow + input.count - 1}`);
        const progress = { phase: 'labelling', solutionsDone: 0, calls: 0 };
        const done = await withHeartbeat(
          () => Promise.all(rows.map((problem, i) => labelOne(input.config, problem, input.firstProblem + i, progress, signal))),
          () => progress,
        );
        const body = done.map(({ lines }) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n').join('');
        await store.put(labelKeys.problems(input.outputPrefix, input.firstProblem, input.count), body, 'application/x-ndjson');
        return { counts: done.reduce((acc, d) => addCounts(acc, d.counts), ZERO_COUNTS) };
      });
    },

    /** Joins a shard's per-problem lines into one part of the labels dataset, with its info beside it. */
    async writeLabelPart(input: {
      outputPrefix: string;
      shard: number;
      firstProblem: number;
      problems: number;
      counts: LabelCounts;
      /** Set when the shard labelled this many problems per activity (`labelProblems`); else one file per problem. */
      problemsPerActivity?: number;
    }): Promise<LabelPart> {
      return mapFailures(async () => {
        const per = input.problemsPerActivity;
        const files = per === undefined
          ? Array.from({ length: input.problems }, (_, i) => labelKeys.problem(input.outputPrefix, input.firstProblem + i))
          : Array.from({ length: Math.ceil(input.problems / per) }, (_, b) =>
              labelKeys.problems(input.outputPrefix, input.firstProblem + b * per, Math.min(per, input.problems - b * per)));
        // Parallel reads, kept in order.
        const texts = await mapWithConcurrency(files, PART_READS_IN_FLIGHT, (key) => store.getText(key));
        const body = texts.join('');
        const ref = await store.put(labelKeys.part(input.outputPrefix, input.shard), body, 'application/x-ndjson');
        const part: LabelPart = { shard: input.shard, ref, lines: body.split('\n').filter((l) => l !== '').length, counts: input.counts };
        await store.putJson(labelKeys.partInfo(input.outputPrefix, input.shard), part);
        return part;
      });
    },

    /** Writes the manifest later stages take as input: lineage, config, counts and every part. */
    async writeLabelsManifest(input: {
      outputPrefix: string;
      shards: number;
      workflowId: string;
      runName: string;
      configHash: string;
      config: SynthesizeLabelsConfig;
      datasetSha256: string;
      methods: AggregationMethod[];
    }): Promise<{ manifest: ObjectRef; counts: LabelCounts; lines: number }> {
      return mapFailures(async () => {
        const parts: LabelPart[] = [];
        for (let s = 0; s < input.shards; s++) parts.push(await store.getJson<LabelPart>(labelKeys.partInfo(input.outputPrefix, s)));
        const counts = parts.reduce((acc, p) => addCounts(acc, p.counts), ZERO_COUNTS);
        const lines = parts.reduce((n, p) => n + p.lines, 0);
        const manifest = await store.putJson(labelKeys.manifest(input.outputPrefix), {
          kind: 'spark.labels',
          version: 1,
          workflowId: input.workflowId,
          runName: input.runName,
          configHash: input.configHash,
          codeVersion: codeVersion(),
          dataset: { uri: input.config.dataset.uri, sha256: input.datasetSha256, fields: input.config.dataset.fields },
          methods: input.methods,
          config: input.config,
          counts,
          lines,
          parts: parts.map((p) => ({ uri: p.ref.uri, sha256: p.ref.sha256, bytes: p.ref.bytes, lines: p.lines })),
        });
        return { manifest, counts, lines };
      });
    },
  };
}

export type LabelActivities = ReturnType<typeof createLabelActivities>;

let version: string | undefined;

/** The code that wrote an output: the package version plus the git commit when the worker runs from a checkout. */
export function codeVersion(): string {
  if (version === undefined) {
    // src/spark/labels/ → the repository root.
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };
    let commit = process.env.SPARK_CODE_COMMIT ?? '';
    if (!commit) {
      try {
        commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
      } catch {
        // Not a checkout (an image, a package): the version alone.
      }
    }
    version = commit ? `${pkg.version}+${commit}` : pkg.version;
  }
  return version;
}
