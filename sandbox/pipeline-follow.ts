/**
 * Following a running `sparkPipeline` from a command: one progress line per running stage every
 * 2 s (from the child workflows' own `progress` queries), each stage's summary once when it
 * completes, and why anything waits (activities retrying). The main job and the neural job share it.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { SparkClient } from '../src/client/spark-client.js';
import { retryLine } from '../src/cli/spark-format.js';
import {
  evaluatePrmProgress, rlTrainProgress, sparkPipelineProgress, synthesizeLabelsProgress, trainPrmProgress,
} from '../src/workflows/index.js';
import type { sparkPipeline } from '../src/workflows/index.js';
import type { PipelineStageProgress } from '../src/spark/pipeline/spark-pipeline.workflow.js';

/** One line on the running stage, from its child workflows' own `progress` queries. */
async function stageLine(client: Client, stage: PipelineStageProgress): Promise<string> {
  const lines = await Promise.all(stage.workflows.map(async ({ workflowId }) => {
    // The latest run of the child: stages continue as new on long runs.
    const child = client.workflow.getHandle(workflowId);
    switch (stage.name) {
      case 'labels': {
        const p = await child.query(synthesizeLabelsProgress);
        return `stage 1 ${p.stage}: problems ${p.counts.problems}/${p.problemsTotal}, shards ${p.shardsDone}/${p.shardsTotal}, `
          + `calls ${p.counts.callsMade}, samples reused ${p.counts.samplesReused}, parse failures ${p.counts.parseFailures}`;
      }
      case 'train-prm': {
        const p = await child.query(trainPrmProgress);
        return `stage 2 ${p.stage}: step ${p.stepsDone}/${p.steps}, loss ${p.lastLoss?.toFixed(3) ?? '—'}, checkpoint ${p.checkpoint ?? 'none yet'}`;
      }
      case 'evaluate-prm': {
        const p = await child.query(evaluatePrmProgress);
        return `evaluating ${workflowId.endsWith('-base') ? 'base' : 'PRM'}: rows ${p.rowsDone}/${p.rowsTotal}`;
      }
      case 'rl-train': {
        const p = await child.query(rlTrainProgress);
        return `stage 3 ${p.stage}: step ${p.step}/${p.totalSteps}, reward ${p.latest?.rewardMean.toFixed(3) ?? '—'}, held-out accuracy ${p.latestEvals[0] ? (100 * p.latestEvals[0].accuracy).toFixed(1) : '—'}`;
      }
    }
  }));
  return lines.join('; ') || `${stage.name} starting`;
}

/** Prints the pipeline's progress every 2 s (each stage's summary once, when it completes) until it ends. */
export async function followPipeline(client: Client, handle: WorkflowHandle<typeof sparkPipeline>) {
  const reported = new Set<string>();
  const spark = new SparkClient(client);
  const tick = async (): Promise<void> => {
    const p = await handle.query(sparkPipelineProgress);
    for (const s of p.stages) {
      if (s.status === 'completed' && !reported.has(s.name)) {
        reported.add(s.name);
        console.error(`[main] ${s.name} completed: ${s.summary ?? ''}`);
      }
    }
    const running = p.stages.filter((s) => s.status === 'running');
    for (const s of running) console.error(`[main] ${await stageLine(client, s)}`);
    if (running.length === 0 && p.stage !== 'completed') console.error(`[main] pipeline ${p.stage}`);
    // Why it waits: activities of the pipeline and its stages that failed and are retrying (as `spark status` shows them).
    for (const r of await spark.retrying(handle.workflowId)) console.error(`[main] ${retryLine(r)}`);
  };
  const timer = setInterval(() => void tick().catch(() => undefined), 2000);
  try {
    const result = await handle.result();
    // The summaries of stages that completed since the last tick.
    await tick().catch(() => undefined);
    return result;
  } finally {
    clearInterval(timer);
  }
}
