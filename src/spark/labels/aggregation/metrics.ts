/**
 * Label quality against ground truth: ProcessBench-style first-error F1 and outcome accuracy.
 */

/** ProcessBench scores of first-error predictions. */
export interface FirstErrorScores {
  /** Exact-match rate on solutions with an error (truth ≠ -1); null when there are none. */
  accErroneous: number | null;
  /** Rate of predicting -1 on solutions without an error (truth = -1); null when there are none. */
  accCorrect: number | null;
  /** Harmonic mean of the two; 0 when both are 0; null when either is null. */
  f1: number | null;
  /** Number of solutions with an error. */
  nErroneous: number;
  /** Number of solutions without an error. */
  nCorrect: number;
}

function assertSameLength(a: readonly unknown[], b: readonly unknown[]): void {
  if (a.length !== b.length) throw new RangeError(`${a.length} predictions for ${b.length} truths`);
}

/**
 * ProcessBench metric: `predictions[i]` and `truths[i]` are 0-based first-error steps, -1 for "no
 * error"; a null prediction (no answer) is always wrong. A prediction counts only if it matches
 * exactly. An empty group has no accuracy (null), and then F1 is null too, instead of NaN.
 */
export function firstErrorF1(predictions: readonly (number | null)[], truths: readonly number[]): FirstErrorScores {
  assertSameLength(predictions, truths);
  let nErroneous = 0;
  let hitErroneous = 0;
  let nCorrect = 0;
  let hitCorrect = 0;
  for (const [i, truth] of truths.entries()) {
    const hit = predictions[i] === truth;
    if (truth === -1) {
      nCorrect++;
      if (hit) hitCorrect++;
    } else {
      nErroneous++;
      if (hit) hitErroneous++;
    }
  }
  const accErroneous = nErroneous === 0 ? null : hitErroneous / nErroneous;
  const accCorrect = nCorrect === 0 ? null : hitCorrect / nCorrect;
  const f1 = accErroneous === null || accCorrect === null
    ? null
    : accErroneous + accCorrect === 0 ? 0 : (2 * accErroneous * accCorrect) / (accErroneous + accCorrect);
  return { accErroneous, accCorrect, f1, nErroneous, nCorrect };
}

/** Accuracy of Yes/No verdicts, overall and per true class. */
export interface OutcomeScores {
  /** Share of verdicts equal to the truth; null when there is nothing to score. */
  accuracy: number | null;
  /** Accuracy on truly correct solutions (truth Yes); null when there are none. */
  accYes: number | null;
  /** Accuracy on truly incorrect solutions (truth No); null when there are none. */
  accNo: number | null;
  n: number;
  nYes: number;
  nNo: number;
}

/** Scores Yes/No verdicts (true = Yes) against the truth; a null prediction is always wrong. */
export function outcomeAccuracy(predictions: readonly (boolean | null)[], truths: readonly boolean[]): OutcomeScores {
  assertSameLength(predictions, truths);
  let nYes = 0;
  let hitYes = 0;
  let nNo = 0;
  let hitNo = 0;
  for (const [i, truth] of truths.entries()) {
    const hit = predictions[i] === truth;
    if (truth) {
      nYes++;
      if (hit) hitYes++;
    } else {
      nNo++;
      if (hit) hitNo++;
    }
  }
  const n = nYes + nNo;
  return {
    accuracy: n === 0 ? null : (hitYes + hitNo) / n,
    accYes: nYes === 0 ? null : hitYes / nYes,
    accNo: nNo === 0 ? null : hitNo / nNo,
    n,
    nYes,
    nNo,
  };
}
