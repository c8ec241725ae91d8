"""Batched decoding for the development model server: requests that wait are decoded together.

A scheduler thread owns one running batch at a time, of rows (samples) that share a model key
(a base model, or a base with one LoRA adapter: peft runs one adapter per forward pass). Each loop:

1. admission: requests waiting in FIFO order join while they share the batch's key and fit in
   `max_batch_size` rows and `max_batch_tokens` cache slots (rows × the longest row's prompt +
   `max_tokens`); a request's `n` rows may be split over two admissions;
2. prefill: each admitted request's prompt runs once, unpadded, and its KV cache is copied to its
   rows (the `n` samples share the prompt's prefill, as vLLM's prefix cache gives);
3. one decode step: every unfinished row feeds its last token through one forward pass of the
   batch over the KV cache (left padding: an attention mask and per-row position ids);
4. finished rows (a stop token, or `max_tokens`) leave the batch, and cache columns that no row
   uses any more are cut, so memory follows the rows still running.

Sampling never touches a global RNG: each sample draws its uniforms from its own stream, derived
from (request seed, sample index), and picks its token by inverse CDF over the temperature- and
top-p-shaped distribution. So a seeded request gives the same tokens alone or batched with others
(up to fp32 rounding of the logits, which differs with the batch's shape), and sample i of a request
does not depend on `n` or `max_tokens`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

log = logging.getLogger(__name__)

# (model key, input_ids [B, Q], attention_mask [B, past + Q], position_ids [B, Q], cache) ->
# the logits of each row's last position, [B, V]; the cache grows by Q columns.
Forward = Callable[[Hashable, torch.Tensor, torch.Tensor, torch.Tensor, DynamicCache], torch.Tensor]

# Rows decoded together, and cache slots for them (rows × the longest row's prompt + max_tokens):
# 128 rows ran fastest of 8–256 for a 5 M model on 2 cores; 65,536 slots are 256 MiB of fp32 cache
# for that model (4 layers, 2 KV heads of 64) and 2.3 GiB for Gemma 3 270M.
DEFAULT_MAX_BATCH_SIZE = 128
DEFAULT_MAX_BATCH_TOKENS = 65_536


@dataclass(frozen=True)
class Sampling:
    """How a request samples: temperature 0 is greedy; no top-k (as vLLM by default)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int


@dataclass
class Sample:
    """One of a request's `n` samples, as the decode loop made it.

    `token_ids` ends with the stop token when `finish_reason` is `stop` (vLLM counts it);
    `logprobs[j]` is log p(token_ids[j]) after temperature, before top-p (what a trainer computes
    with the same temperature), with the raw distribution for greedy rows.
    """

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass(eq=False)
class Job:
    """One request: `n` samples of one prompt under one model key."""

    key: Hashable
    prompt_ids: list[int]
    sampling: Sampling
    stop_ids: frozenset[int]
    n: int
    samples: list[Sample] = field(init=False)
    future: Future[list[Sample]] = field(init=False, default_factory=Future)
    admitted: int = 0
    unfinished: int = field(init=False)

    def __post_init__(self) -> None:
        self.samples = [Sample() for _ in range(self.n)]
        self.unfinished = self.n

    @property
    def row_tokens(self) -> int:
        """The most cache slots one of its rows can take."""
        return len(self.prompt_ids) + self.sampling.max_tokens


def sample_stream(seed: int, index: int, length: int) -> np.ndarray:
    """The uniforms sample `index` of a request seeded `seed` draws, one per token.

    SeedSequence gives independent streams per (seed, index), and a prefix of a longer draw equals
    a shorter draw, so the tokens do not depend on `max_tokens` or on `n`.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,))).random(length)


def sample_tokens(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, uniform: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next token of each row and its log-prob, from last-position `logits` [B, V].

    Rows at temperature 0 take the argmax. The others keep the smallest set of most likely tokens
    whose mass reaches `top_p` and pick by inverse CDF with their own `uniform` in [0, 1): the
    same logits and uniform give the same token whatever other rows share the batch.
    """
    logits = logits.float()
    greedy = temperature == 0
    scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature).unsqueeze(1)
    logp = torch.log_softmax(scaled, dim=-1)
    tokens = logp.argmax(dim=-1)
    nucleus = ~greedy & (top_p < 1)
    full = ~greedy & ~nucleus
    if bool(full.any()):
        # Without top-p the vocabulary order serves as well as a sorted one, and skips the sort.
        rows = full.nonzero().squeeze(1)
        tokens[rows] = _inverse_cdf(logp[rows].exp(), uniform[rows])
    if bool(nucleus.any()):
        rows = nucleus.nonzero().squeeze(1)
        probs, order = logp[rows].exp().sort(dim=-1, descending=True, stable=True)
        before = probs.cumsum(dim=-1) - probs  # the mass of the more likely tokens
        kept = torch.where(before < top_p[rows].unsqueeze(1), probs, torch.zeros_like(probs))
        tokens[rows] = order.gather(1, _inverse_cdf(kept, uniform[rows]).unsqueeze(1)).squeeze(1)
    return tokens, logp.gather(1, tokens.unsqueeze(1)).squeeze(1)


def _inverse_cdf(weights: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """The column of each row of `weights` [R, V] (unnormalised, >= 0) that `uniform` picks."""
    cdf = weights.cumsum(dim=-1)
    target = (uniform.to(cdf.dtype) * cdf[:, -1]).unsqueeze(1)
    pick = torch.searchsorted(cdf, target, right=True).squeeze(1)
    # Rounding can put the target past the last column of non-zero weight: take that column.
    last = weights.shape[1] - 1 - (weights > 0).flip(dims=[1]).long().argmax(dim=-1)
    return torch.minimum(pick, last)


@dataclass
class _Row:
    job: Job
    index: int
    uniforms: np.ndarray

    @property
    def sample(self) -> Sample:
        return self.job.samples[self.index]

    @property
    def done(self) -> bool:
        return self.sample.finish_reason is not None

    @property
    def length(self) -> int:
        """Tokens this row holds: prompt and generated (the last one not yet in the cache)."""
        return len(self.job.prompt_ids) + len(self.sample.token_ids)


class _SlotLayer(DynamicLayer):
    """A cache layer in a buffer with room for the batch's longest row: a step writes one column,
    where transformers' DynamicLayer concatenates, copying the whole cache for every token."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, width: int) -> None:
        super().__init__()
        self.buffer_keys, self.buffer_values, self.width = keys, values, width
        self.keys, self.values = keys[:, :, :width], values[:, :, :width]
        self.is_initialized = True
        self.device, self.dtype = keys.device, keys.dtype

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.width + key_states.shape[-2]
        self.buffer_keys[:, :, self.width : end] = key_states
        self.buffer_values[:, :, self.width : end] = value_states
        self.width = end
        self.keys, self.values = self.buffer_keys[:, :, :end], self.buffer_values[:, :, :end]
        return self.keys, self.values


# The rows of one part of a batch, its cache as (keys, values) per layer, and its mask [rows, width].
_Part = tuple[list["_Row"], list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]


@dataclass
class _Batch:
    """Rows decoding together, left padded to one width in buffers with room for every row.

    Finished rows stay in (fed their last token, their samples untouched) until enough of them
    have finished that copying the rest into smaller buffers pays.
    """

    key: Hashable
    rows: list[_Row]
    cache: DynamicCache
    mask_buffer: torch.Tensor  # [B, capacity], 1 where a column holds one of the row's tokens
    width: int

    @property
    def mask(self) -> torch.Tensor:
        return self.mask_buffer[:, : self.width]

    @property
    def capacity(self) -> int:
        return self.mask_buffer.shape[1]

    def part(self, index: torch.Tensor, first: int = 0) -> _Part:
        """Rows `index` with their cache and mask from column `first` on, as a part to assemble."""
        layers = [
            (layer.keys[index, :, first:], layer.values[index, :, first:]) for layer in self.cache.layers
        ]
        return [self.rows[i] for i in index.tolist()], layers, self.mask[index, first:]


def _stop(cond: threading.Condition, closed: threading.Event, thread: threading.Thread) -> None:
    with cond:
        closed.set()
        cond.notify()
    if thread is not threading.current_thread():
        thread.join(timeout=10)


def _assemble(key: Hashable, parts: list[_Part]) -> _Batch:
    """One batch of the parts' rows: each part right-aligned to the widest, zeros on the left.

    The buffers hold every row's prompt and `max_tokens`: an unfinished row never has more than
    `row_tokens - 1` tokens in the cache, so the batch needs no growth until rows change.
    """
    width = max(mask.shape[1] for _, _, mask in parts)
    rows = [r for part_rows, _, _ in parts for r in part_rows]
    capacity = max(width + 1, max(r.job.row_tokens for r in rows))
    first_layers = parts[0][1]
    layers = []
    for i, (keys0, values0) in enumerate(first_layers):
        keys = keys0.new_zeros(len(rows), keys0.shape[1], capacity, keys0.shape[3])
        values = values0.new_zeros(len(rows), values0.shape[1], capacity, values0.shape[3])
        start = 0
        for part_rows, part_layers, mask in parts:
            # Zeros under a 0 in the mask: no query ever attends to them.
            end, pad = start + len(part_rows), width - mask.shape[1]
            keys[start:end, :, pad:width] = part_layers[i][0]
            values[start:end, :, pad:width] = part_layers[i][1]
            start = end
        layers.append(_SlotLayer(keys, values, width))
    cache = DynamicCache()
    cache.layers = layers
    mask_buffer = parts[0][2].new_zeros(len(rows), capacity)
    start = 0
    for part_rows, _, mask in parts:
        end = start + len(part_rows)
        mask_buffer[start:end, width - mask.shape[1] : width] = mask
        start = end
    return _Batch(key, rows, cache, mask_buffer, width)


@dataclass
class SchedulerStats:
    """What the loop did, so tests can see that requests were decoded together."""

    prefills: int = 0
    decode_steps: int = 0
    rows_decoded: int = 0  # the sum over decode steps of the rows in the step
    max_rows: int = 0  # the most rows one decode step carried
    tokens: int = 0


class Scheduler:
    """The thread that decodes every request; `submit` a job, then wait on `job.future`."""

    def __init__(
        self,
        forward: Forward,
        device: torch.device,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        self.forward, self.device = forward, device
        self.max_batch_size, self.max_batch_tokens = max_batch_size, max_batch_tokens
        self.stats = SchedulerStats()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._held = 0
        self._closed = threading.Event()
        self._batch: _Batch | None = None
        self._thread = threading.Thread(target=self._run, name="decode-scheduler", daemon=True)
        self._thread.start()
        # Stopped before the interpreter exits: a daemon thread killed inside torch aborts the process.
        weakref.finalize(self, _stop, self._cond, self._closed, self._thread)

    def submit(self, job: Job) -> None:
        if job.row_tokens > self.max_batch_tokens:
            raise ValueError(f"a row needs {job.row_tokens} cache slots, over {self.max_batch_tokens}")
        with self._cond:
            self._queue.append(job)
            self._cond.notify()

    def waiting(self) -> int:
        """Requests queued and not wholly admitted yet."""
        with self._cond:
            return len(self._queue)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """No admissions while inside: requests submitted meanwhile join one batch after it."""
        with self._cond:
            self._held += 1
        try:
            yield
        finally:
            with self._cond:
                self._held -= 1
                self._cond.notify()

    def close(self) -> None:
        _stop(self._cond, self._closed, self._thread)

    def _run(self) -> None:
        # Inference mode is per thread: the loop's thread needs its own.
        with torch.inference_mode():
            while True:
                with self._cond:
                    while (
                        not self._closed.is_set() and self._batch is None and (self._held or not self._queue)
                    ):
                        self._cond.wait()
                    if self._closed.is_set():
                        return
                    admitted = [] if self._held else self._admit()
                try:
                    if admitted:
                        self._prefill(admitted)
                    if self._batch is not None:
                        self._decode()
                except Exception as exc:  # a failed forward fails the requests in it, not the loop
                    log.exception("decoding failed")
                    self._fail({j for j, _ in admitted} | self._jobs_in_batch(), exc)

    def _admit(self) -> list[tuple[Job, list[int]]]:
        """Rows of waiting jobs, in FIFO order, that join the batch now (called under the lock)."""
        batch = self._batch
        key = batch.key if batch is not None else (self._queue[0].key if self._queue else None)
        rows = len(batch.rows) if batch is not None else 0
        width = max((r.job.row_tokens for r in batch.rows), default=0) if batch is not None else 0
        admitted: list[tuple[Job, list[int]]] = []
        while self._queue and self._queue[0].key == key:
            job = self._queue[0]
            wide = max(width, job.row_tokens)
            room = min(self.max_batch_size - rows, self.max_batch_tokens // wide - rows)
            take = min(room, job.n - job.admitted)
            if take <= 0:
                break
            admitted.append((job, list(range(job.admitted, job.admitted + take))))
            job.admitted += take
            rows, width = rows + take, wide
            if job.admitted < job.n:
                break  # the rest of its rows wait for room; nothing overtakes them
            self._queue.popleft()
        return admitted

    def _prefill(self, admitted: list[tuple[Job, list[int]]]) -> None:
        """Runs each admitted prompt once and merges its rows into the batch with their first token."""
        parts: list[_Part] = []
        if self._batch is not None:
            self._compact(force=True)
        if self._batch is not None:
            parts.append(self._batch.part(torch.arange(len(self._batch.rows), device=self.device)))
        for job, indices in admitted:
            prompt = torch.tensor([job.prompt_ids], device=self.device)
            cache = DynamicCache()
            logits = self.forward(
                job.key,
                prompt,
                torch.ones_like(prompt),
                torch.arange(prompt.shape[1], device=self.device).unsqueeze(0),
                cache,
            )
            self.stats.prefills += 1
            rows = [
                _Row(job, i, sample_stream(job.sampling.seed, i, job.sampling.max_tokens)) for i in indices
            ]
            copies = len(rows)
            self._take(rows, logits.expand(copies, -1))
            layers = [
                (layer.keys.expand(copies, -1, -1, -1), layer.values.expand(copies, -1, -1, -1))
                for layer in cache.layers
            ]
            parts.append((rows, layers, prompt.new_ones(copies, prompt.shape[1])))
        self._batch = _assemble(admitted[0][0].key, parts)
        self._compact(force=True)

    def _decode(self) -> None:
        batch = self._batch
        assert batch is not None
        # Finished rows still in the batch feed their last token; nothing reads what they get.
        last = torch.tensor([[r.sample.token_ids[-1]] for r in batch.rows], device=self.device)
        positions = torch.tensor([[r.length - 1] for r in batch.rows], device=self.device)
        batch.mask_buffer[:, batch.width] = 1
        batch.width += 1
        logits = self.forward(batch.key, last, batch.mask, positions, batch.cache)
        self.stats.decode_steps += 1
        self.stats.rows_decoded += len(batch.rows)
        self.stats.max_rows = max(self.stats.max_rows, len(batch.rows))
        running = [i for i, r in enumerate(batch.rows) if not r.done]
        self._take([batch.rows[i] for i in running], logits[torch.tensor(running, device=logits.device)])
        self._compact(force=batch.width == batch.capacity)

    def _take(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Samples each row's next token from its logits and records it with its log-prob."""
        temperature = torch.tensor([r.job.sampling.temperature for r in rows], device=logits.device)
        top_p = torch.tensor([r.job.sampling.top_p for r in rows], device=logits.device)
        uniform = torch.tensor(
            [r.uniforms[len(r.sample.token_ids)] for r in rows], dtype=torch.float64, device=logits.device
        )
        tokens, logprobs = sample_tokens(logits, temperature, top_p, uniform)
        self.stats.tokens += len(rows)
        for row, token, logprob in zip(rows, tokens.tolist(), logprobs.tolist(), strict=True):
            sample = row.sample
            sample.token_ids.append(token)
            sample.logprobs.append(logprob)
            if token in row.job.stop_ids:
                sample.finish_reason = "stop"
            elif len(sample.token_ids) >= row.job.sampling.max_tokens:
                sample.finish_reason = "length"
            if sample.finish_reason is not None:
                row.job.unfinished -= 1
                # A future cancelled by its waiter (asyncio.wrap_future cancels it when the
                # request is) takes no result; the batch goes on for the others.
                if row.job.unfinished == 0 and not row.job.future.done():
                    row.job.future.set_result(row.job.samples)

    def _compact(self, force: bool) -> None:
        """Drops finished rows (and the columns only they used) once an eighth of the batch has
        finished, or when `force`d (before a merge, or when the buffers are full)."""
        batch = self._batch
        assert batch is not None
        keep = [i for i, r in enumerate(batch.rows) if not r.done]
        finished = len(batch.rows) - len(keep)
        if not keep:
            self._batch = None
            return
        if finished == 0 or (not force and finished < max(1, len(batch.rows) // 8)):
            return
        index = torch.tensor(keep, device=self.device)
        # Columns that no remaining row uses (the left padding of rows that left) are cut.
        first = int(batch.mask[index].any(dim=0).long().argmax())
        self._batch = _assemble(batch.key, [batch.part(index, first)])

    def _jobs_in_batch(self) -> set[Job]:
        return {r.job for r in self._batch.rows} if self._batch is not None else set()

    def _fail(self, jobs: set[Job], exc: Exception) -> None:
        self._batch = None
        with self._cond:
            for job in jobs:
                if job in self._queue:
                    self._queue.remove(job)
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)
