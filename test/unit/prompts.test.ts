import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import {
  buildCriticMessages, buildGeneratorMessages, buildMergeMessages, buildPrmMessages, buildProcessBenchMessages,
  buildVerifierMessages, renderSolutionSteps,
} from '../../src/spark/common/prompts.js';
import { detectRole } from '../../sandbox/world/roles.js';

const question = 'Start with 17. Add 25. Multiply by 3. What is the result?';
const steps = ['17 + 25 = 42.', '42 × 3 = 126.'];

function userText(messages: ChatMessage[]): string {
  return messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
}

describe('prompt builders', () => {
  it('asks the generator for the SPARK policy format', () => {
    const text = userText(buildGeneratorMessages(question));
    expect(text).toContain('<step>');
    expect(text).toContain('<answer>');
    expect(text).toContain('exactly one \\boxed{}');
    expect(text.endsWith(`Problem: ${question}`)).toBe(true);
  });

  it('numbers the solution for the verifier and asks for the exact verifier format', () => {
    const text = userText(buildVerifierMessages({ question, steps, answer: '\\boxed{126}' }));
    expect(text).toContain('Step 1: 17 + 25 = 42.\nStep 2: 42 × 3 = 126.\nFinal answer: \\boxed{126}');
    expect(text).toContain('**Verification: Is the answer correct (Yes/No)? X**');
    expect(text).toContain('"**This step is correct.**"');
    expect(text).not.toContain('reference');
    const guided = userText(buildVerifierMessages({ question, steps, referenceAnswer: '126' }));
    expect(guided).toContain('<reference_answer>\n126\n</reference_answer>');
  });

  it('strips <think> from a verification before the critic and merger see it', () => {
    const verification = '<think>secret</think>## Step 1: a\n**This step is correct.**';
    expect(userText(buildCriticMessages({ question, steps, verification }))).not.toContain('secret');
    expect(userText(buildMergeMessages({ question, steps, verification, critique: '<think>x</think>ok' }))).not.toContain('secret');
  });

  it('writes the SPARK reward-model prompts exactly', () => {
    expect(buildPrmMessages({ style: 'orm', question, steps })).toEqual([
      { role: 'user', content: `Problem: ${question}\nSolution: Step 1: 17 + 25 = 42.\nStep 2: 42 × 3 = 126.\nIs the answer correct (Yes/No)?` },
    ]);
    const prm = buildPrmMessages({ style: 'prm-cot', question, steps })[0]?.content ?? '';
    expect(prm).toBe(`Problem: ${question}\nStudent Solution: Step 1: 17 + 25 = 42.\nStep 2: 42 × 3 = 126.\nLet's verify step by step.`);
    expect(buildPrmMessages({ style: 'prm', question, steps })[0]?.content).toBe(prm);
  });

  it('uses the ProcessBench template with 0-indexed paragraphs', () => {
    const text = userText(buildProcessBenchMessages({ problem: question, steps }));
    expect(text).toContain('<paragraph_0>\n17 + 25 = 42.\n</paragraph_0>');
    expect(text).toContain('<paragraph_1>\n42 × 3 = 126.\n</paragraph_1>');
    expect(text).toContain('return the index of -1');
    expect(text).toContain('in \\boxed{}');
  });

  it('shows text written after the answer verbatim', () => {
    expect(renderSolutionSteps({ steps: ['a'], answer: '\\boxed{1}', trailing: '\n\nmore' })).toBe('Step 1: a\nFinal answer: \\boxed{1}\nmore');
  });
});

describe('detectRole', () => {
  it('recognises every template', () => {
    const verification = '## Step 1: a\n**This step is correct.**\n**Verification: Is the answer correct (Yes/No)? Yes**';
    expect(detectRole(buildGeneratorMessages(question))).toBe('generator');
    expect(detectRole(buildVerifierMessages({ question, steps }))).toBe('verifier');
    expect(detectRole(buildVerifierMessages({ question, steps, referenceAnswer: '126' }))).toBe('verifier');
    expect(detectRole(buildCriticMessages({ question, steps, verification }))).toBe('critic');
    expect(detectRole(buildMergeMessages({ question, steps, verification, critique: 'c' }))).toBe('merger');
    expect(detectRole(buildPrmMessages({ style: 'orm', question, steps }))).toBe('orm');
    expect(detectRole(buildPrmMessages({ style: 'prm', question, steps }))).toBe('prm');
    expect(detectRole(buildProcessBenchMessages({ problem: question, steps }))).toBe('processbench');
    expect(detectRole([{ role: 'user', content: 'Hello there' }])).toBe('unknown');
  });
});
