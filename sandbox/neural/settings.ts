/**
 * Training settings for the neural world's models, shared by `npm run neural`, the experiments and
 * the learning tests. The world's models are a few million parameters at most, so the LoRA adapter
 * covers every projection and the learning rates are those of small models, not of a 7B.
 */
import type { Adapter, Optimizer } from '../../src/core/trainer/protocol.js';

/**
 * The model stage 2 fine-tunes into a PRM. The paper starts from the generator's base; here the
 * policy judges nothing (it calls every step correct), and a PRM fine-tuned from it on stage-1
 * labels learnt their format and prior only (world ProcessBench F1 0.00 → 0.00). The verifier is
 * the world's only model that learnt to judge; at the PRM prompt, which it never saw, it raises
 * many false alarms, and the labels teach it the prompt and calibrate it (`docs/neural-world.md`).
 */
export const PRM_BASE = 'verifier';

/** LoRA rank 16 on every projection of the Qwen2 blocks. */
export const WORLD_ADAPTER: Adapter = { kind: 'lora', rank: 16, alpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], dropout: 0 };

/** PRM fine-tuning (stage 2). */
export const WORLD_PRM_OPTIMIZER: Optimizer = { name: 'adamw', learningRate: 3e-3, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 2, maxGradNorm: 1 };

/** GRPO of the policy (stage 3). */
export const WORLD_RL_OPTIMIZER: Optimizer = { name: 'adamw', learningRate: 2e-3, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 };

/** Longest answers the world's roles write: a 5-step solution is ~60 tokens, a verification ~110. */
export const WORLD_MAX_TOKENS = { solution: 128, verification: 320 } as const;

/**
 * Stage 1's verifier sampling. A model this small judges far worse sampled at T = 1 than greedily
 * (its recomputations go wrong and raise false alarms on nearly every solution), so the world's
 * verifier samples cooler than SPARK's T = 0.8, keeping enough spread for self-consistency.
 */
export const WORLD_VERIFIER_SAMPLING = { temperature: 0.6, topP: 1, maxTokens: WORLD_MAX_TOKENS.verification } as const;
