/** Every activity the workers run, each stage's from its own folder; the worker registers this object. */
import { createCoEvolveActivities, recycleRollouts } from '../spark/co-evolve/activities.js';
import { createEvaluateActivities } from '../spark/prm/evaluate-prm.activities.js';
import { createLabelActivities } from '../spark/labels/activities.js';
import { createPipelineActivities } from '../spark/pipeline/activities.js';
import { createPrmDataActivities } from '../spark/prm/train-prm.activities.js';
import { createRlActivities } from '../spark/rl/activities.js';
import { createSolutionActivities } from '../spark/labels/sample-solutions.activities.js';
import { createTrainingActivities } from '../core/trainer/activities.js';
import type { ActivityDeps } from '../core/deps.js';
import { createRunOutputActivities } from '../core/store/run-outputs.js';

/** Every activity, built from the clients the worker owns. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSolutionActivities(deps),
    ...createLabelActivities(deps),
    ...createPrmDataActivities(deps),
    ...createEvaluateActivities(deps),
    ...createTrainingActivities(deps),
    // Co-evolution plugs into the GRPO loop's rollouts here; rlTrain's steps carry no `recycle` and pass through.
    ...createRlActivities(deps, { onRollouts: recycleRollouts }),
    ...createCoEvolveActivities(deps),
    ...createPipelineActivities(deps),
    // Every stage claims its output prefix for its configuration first.
    ...createRunOutputActivities(deps),
  };
}
