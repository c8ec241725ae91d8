/**
 * Which role a prompt asks the sandbox models to play, read from the fixed phrase each
 * template carries (`ROLE_MARKERS` in src/spark/common/prompts.ts), as a real model would.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { coEvolveRoleOf } from '../../src/spark/co-evolve/prompts.js';
import { ROLE_MARKERS } from '../../src/spark/common/prompts.js';

/** The role a prompt asks a model to play. PRM and PRM-CoT share one prompt (`prm`). */
export type Role = 'generator' | 'verifier' | 'critic' | 'merger' | 'orm' | 'prm' | 'processbench'
  | 'pointwise-judge' | 'pairwise-judge' | 'reflection' | 'resolve' | 'unknown';

/** Every role name, in the order {@link detectRole} tries them. */
export const ROLES: readonly Role[] = ['merger', 'critic', 'verifier', 'processbench', 'prm', 'orm', 'resolve', 'pairwise-judge', 'reflection', 'pointwise-judge', 'generator', 'unknown'];

/** Recognises the role from the fixed phrase of its template; `unknown` for anything else. */
export function detectRole(messages: readonly ChatMessage[]): Role {
  const text = messages.filter((m) => m.role !== 'assistant').map((m) => m.content).join('\n');
  if (text.includes(ROLE_MARKERS.merger)) return 'merger';
  if (text.includes(ROLE_MARKERS.critic)) return 'critic';
  if (text.includes(ROLE_MARKERS.verifier)) return 'verifier';
  if (text.includes(ROLE_MARKERS.processbench) && /<paragraph_\d+>/.test(text)) return 'processbench';
  if (/Student Solution:/.test(text) && text.trimEnd().endsWith(ROLE_MARKERS.prm)) return 'prm';
  if (/(^|\n)Solution:/.test(text) && text.trimEnd().endsWith(ROLE_MARKERS.orm)) return 'orm';
  const coEvolve = coEvolveRoleOf(text);
  if (coEvolve) return coEvolve;
  if (text.includes(ROLE_MARKERS.generator)) return 'generator';
  return 'unknown';
}
