/**
 * The verifiable reward of recycled items (co-evolving SPARK): judging items are right when the
 * last `\boxed{}` is their label, reflection items when it is equivalent to the reference answer.
 * Pure, but it loads the math checker: activities only, never workflows.
 */
import type { RecycledItem } from './recycling.js';
import { readVerdict } from './prompts.js';
import { answersEquivalent, extractBoxedAnswer } from '../common/math-answer.js';

/** 1 when the completion gives the item's label, else 0 (no readable answer is wrong). */
export function recycledReward(item: RecycledItem, completion: string): number {
  switch (item.kind) {
    case 'pointwise': return readVerdict('pointwise', completion) === item.label ? 1 : 0;
    case 'pairwise': return readVerdict('pairwise', completion) === item.label ? 1 : 0;
    case 'reflection': {
      const answer = extractBoxedAnswer(completion);
      return answer !== null && answersEquivalent(answer, item.label) ? 1 : 0;
    }
  }
}
