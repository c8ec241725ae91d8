/**
 * The recycled-item cache of a co-evolving run: each rollout step's items wait here, oldest
 * first, until a full batch makes an extra GRPO step on them. Only counts are carried in the
 * workflow's state; the items are in S3 (`recycled/step-N.jsonl`).
 */

export type RecycledKind = 'pointwise' | 'pairwise' | 'reflection';

/** The recycled items of one rollout step, stored as `recycled/step-N.jsonl` in the order built. */
export interface RecycledCacheEntry {
  rlStep: number;
  count: number;
}

/** A slice `[from, to)` of one rollout step's recycled items. */
export interface CachePart {
  rlStep: number;
  from: number;
  to: number;
}

/** Items in the cache not yet trained on (`consumed` counts those of its first entry already used). */
export function cachedItemCount(cache: readonly RecycledCacheEntry[], consumed: number): number {
  return cache.reduce((n, e) => n + e.count, 0) - consumed;
}

/**
 * The next full batch of recycled items, oldest first, and the cache after it; no parts while the
 * cache holds less than a batch. Fully used entries are dropped, so the carried state stays small.
 */
export function takeFromCache(cache: readonly RecycledCacheEntry[], consumed: number, batchSize: number): { parts: CachePart[]; cache: RecycledCacheEntry[]; consumed: number } {
  if (batchSize <= 0 || cachedItemCount(cache, consumed) < batchSize) return { parts: [], cache: [...cache], consumed };
  const parts: CachePart[] = [];
  let need = batchSize;
  let i = 0;
  let offset = consumed;
  while (need > 0) {
    const entry = cache[i]!;
    const take = Math.min(need, entry.count - offset);
    parts.push({ rlStep: entry.rlStep, from: offset, to: offset + take });
    need -= take;
    offset += take;
    if (offset === entry.count) {
      i++;
      offset = 0;
    }
  }
  return { parts, cache: cache.slice(i), consumed: offset };
}
