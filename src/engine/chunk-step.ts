import { setImmediate as yieldToIo } from 'node:timers/promises';
import { FencedError } from '../core/errors.ts';
import { toStreamWriter, type ChunkContext } from '../core/items.ts';
import type { ChunkListener, ChunkStepDefinition, Phase, SkippedItem, StepContext } from '../core/job.ts';
import { ZERO_COUNTERS, skipCount, type ExecutionContext, type StepCounters, type StepExecution } from '../core/model.ts';
import type { Tx } from '../repository/tx.ts';
import { commitFenced, fencedMessage } from './checkpoint.ts';
import type { ExecutionHandle } from './execution-handle.ts';
import {
  backoffDelay, describeItem, describeSkip, isRetryable, isSkippable, matchesAny, policyAllows, skipLimitError, sleep, tellRetry,
} from './fault-tolerance.ts';
import { adaptReader, isThenable } from './reader-adapter.ts';
import { openProgress } from './progress.ts';
import { openThreadPool } from './threaded-processor.ts';

type Listeners<P, I, O> = ChunkListener<P, I, O>[];

/** How a chunk step ended without failing. */
export type ChunkStepEnd = 'COMPLETED' | 'STOPPED';

/**
 * Runs a chunk-oriented step: read `chunkSize` items, process them, and write them in one
 * transaction together with the step's checkpoint, until the reader is exhausted. Counters
 * reach the step execution only when their chunk commits.
 */
export async function runChunkStep<P, I, O>(
  def: ChunkStepDefinition<P, I, O>,
  ctx: StepContext<P>,
  handle: ExecutionHandle,
  step: StepExecution,
): Promise<ChunkStepEnd> {
  const chunkSize = typeof def.chunkSize === 'function' ? def.chunkSize(ctx) : def.chunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new Error(`step ${def.name}: chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const reader = adaptReader(def.reader(ctx));
  const writer = toStreamWriter(def.writer(ctx));
  const pool = def.processInThreads ? openThreadPool(def.processInThreads) : undefined;
  // One item through whichever processor the step has (used for retries of a threaded one too).
  const processor: ((item: I, c: StepContext<P>) => O | undefined | Promise<O | undefined>) | undefined =
    def.processor ??
    (pool &&
      (async (item: I) => {
        const [r] = await pool.process([item]);
        if ('error' in r) throw r.error;
        return r.value as O | undefined;
      }));
  const listeners: Listeners<P, I, O> = def.chunkListeners ?? [];
  const has = (key: keyof ChunkListener<P, I, O>) => listeners.some((l) => typeof l[key] === 'function');
  const hooks = {
    beforeRead: has('beforeRead'), afterRead: has('afterRead'), onReadError: has('onReadError'),
    beforeProcess: has('beforeProcess'), afterProcess: has('afterProcess'), onProcessError: has('onProcessError'),
  };
  // A skip policy with a policy function and no limit has no limit but the function's own.
  const skipLimit = typeof def.skip?.limit === 'function' ? def.skip.limit(ctx) : (def.skip?.limit ?? (def.skip?.policy ? Infinity : 0));
  const concurrency = def.processConcurrency ?? 1;
  const signal = handle.lost.signal;
  // Reading ahead only overlaps anything when the write waits on another process.
  const readAhead = def.readAhead === true && handle.db.dialect === 'postgres';
  // With an in-process processor the items never leave this step, and with one chunk in flight
  // at a time each chunk can read into the same array: its memory stays in the CPU's cache.
  const itemBuffer: I[] | undefined = def.processor && !pool && !readAhead ? [] : undefined;

  // Counters as committed; each chunk carries its own contribution until it commits.
  const committed: StepCounters = { ...pickCounters(step) };
  // Chunks (or parts of one being written item by item) read but not committed yet (two with
  // read-ahead): their skips count toward the limit.
  const open = new Set<Part<I, O>>();

  // Synchronous from the count to the caller's increment: skips decided side by side (items
  // processed concurrently) each see the others.
  const checkSkip = (phase: Phase, error: unknown, item: unknown) => {
    if (!isSkippable(def.skip, error)) return false;
    let skips = skipCount(committed);
    for (const c of open) skips += skipCount(c.counts);
    if (!policyAllows(def.skip, { error, phase, skipCount: skips, item })) return false;
    if (skips + 1 > skipLimit) throw skipLimitError(skipLimit, phase, error, item);
    return true;
  };

  const publish = () => Object.assign(step, committed);

  await reader.open(ctx.stepContext);
  const progress = openProgress(reader, ctx.stepContext);
  // A chunk whose item-by-item write was cut short (a crash, a failure): it is read again and
  // written on from the first item not done yet.
  let resume = scanMark(ctx.stepContext[SCAN]);
  // A chunk that fails while reading or processing is rolled back like one that fails writing.
  let inChunk = false;
  let ahead: Promise<Chunk<I, O>> | undefined;
  // The chunk being read ahead, until the loop takes it: not part of a failure before that.
  let aheadChunk: Chunk<I, O> | undefined;
  try {
    await writer.open?.(ctx.stepContext);
    await saveOpeningState();
    for (;;) {
      if (signal.aborted) throw new FencedError(fencedMessage(handle));
      if (handle.stopRequested) return 'STOPPED';
      for (const l of listeners) await l.beforeChunk?.(ctx);
      inChunk = true;
      const next = ahead;
      ahead = aheadChunk = undefined;
      // A resumed chunk is read whole even when a stop is requested: its items done are dropped
      // by count, and the next chunk must begin where the cut-short one ended.
      const chunk = next ? await next : await readChunk(false, resume ? resume.size : chunkSize, !resume);
      if (resume) {
        skipDone(chunk, resume.done);
        // Its reads, skips and filters were counted (and told) by its first commit.
        open.delete(chunk);
      }
      const outputs = await processChunk(chunk);
      if (resume) Object.assign(chunk, { counts: { ...ZERO_COUNTERS }, skips: [] });
      inChunk = false;
      if (readAhead && !chunk.eof && !handle.stopRequested) {
        ahead = readChunk(true);
        ahead.catch(() => undefined); // its error surfaces when the loop awaits it
      }
      // A chunk that finds the end of input at once still commits, as in Spring Batch: the
      // checkpoint records the reader's end position, and the commit is counted.
      const stopping = resume ? await scan(chunk, outputs) : await writeChunk(chunk, outputs);
      resume = undefined;
      publish();
      handle.onProgress?.(step);
      for (const l of listeners) await l.afterChunk?.(ctx);
      if (stopping) handle.stopRequested = true;
      if (chunk.eof) return 'COMPLETED';
    }
  } catch (error) {
    if (!(error instanceof FencedError)) {
      if (inChunk) {
        committed.rollbackCount++;
        await tellChunkError(error);
      }
      // As in Spring Batch, a failed step's counters include what the chunk that failed read,
      // filtered and skipped, though none of it committed: they explain the failure.
      for (const part of open) if (part !== aheadChunk) addUncommitted(committed, part.counts);
    }
    throw error;
  } finally {
    // Items read ahead are dropped (a restart reads them again); the reader closes once idle.
    if (ahead) await ahead.catch(() => undefined);
    publish();
    await pool?.close();
    await writer.close?.();
    await reader.close();
  }

  /**
   * Reads up to `limit` items (fewer at the end, or when a stop is requested and `stoppable`)
   * and records the reader's position after the last one. Reading ahead yields to I/O now and
   * then, so the previous chunk's commit makes progress while this one is read.
   */
  async function readChunk(ahead: boolean, limit = chunkSize, stoppable = true): Promise<Chunk<I, O>> {
    const chunk: Chunk<I, O> = { items: itemBuffer ?? [], size: 0, counts: { ...ZERO_COUNTERS }, skips: [], position: {}, eof: false, base: 0 };
    open.add(chunk);
    if (ahead) aheadChunk = chunk;
    const { items, counts } = chunk;
    const atHand = !hooks.beforeRead && !hooks.afterRead && !ahead;
    try {
      while (chunk.size < limit) {
        let item: I | undefined;
        try {
          if (atHand) {
            const pending = readAtHand(chunk, limit, stoppable);
            if (pending === undefined) break;
            item = await pending;
          } else {
            if (hooks.beforeRead) for (const l of listeners) l.beforeRead?.();
            const r = reader.read();
            item = isThenable(r) ? await r : r;
          }
        } catch (error) {
          if (hooks.onReadError) for (const l of listeners) l.onReadError?.(error);
          if (checkSkip('read', error, undefined)) {
            counts.readSkipCount++;
            chunk.skips.push({ phase: 'read', error });
          } else if (matchesAny(def.noRollback, error)) ignored('read', error, undefined);
          else throw error;
          continue;
        }
        if (item === undefined) {
          chunk.eof = true;
          break;
        }
        if (hooks.afterRead) for (const l of listeners) l.afterRead?.(item);
        items[chunk.size++] = item;
        if (handle.stopRequested && stoppable) break;
        if (ahead && chunk.size % YIELD_EVERY === 0) await yieldToIo();
      }
    } finally {
      counts.readCount = chunk.size;
    }
    reader.update(chunk.position);
    return chunk;
  }

  /**
   * Reads in a tight synchronous loop while the reader hands items over at once (most do: they
   * buffer). Returns the first promise the reader gives, or undefined when the chunk is full,
   * the reader is exhausted or a stop was requested; a read error is thrown to the caller.
   */
  function readAtHand(chunk: Chunk<I, O>, limit: number, stoppable: boolean): Promise<I | undefined> | undefined {
    const items = chunk.items;
    let n = chunk.size;
    try {
      while (n < limit) {
        const r = reader.read();
        if (r === undefined) {
          chunk.eof = true;
          return undefined;
        }
        if (isThenable(r)) return r;
        items[n++] = r;
        if (handle.stopRequested && stoppable) return undefined;
      }
      return undefined;
    } finally {
      chunk.size = n;
    }
  }

  /** Runs the chunk's items through the processor; filtered and skipped items drop out. */
  async function processChunk(chunk: Chunk<I, O>): Promise<O[]> {
    const { items, size, counts } = chunk;
    if (!processor) return items as unknown as O[];
    if (concurrency > 1) return processConcurrently(chunk);
    const outputs = collector<O>(size);
    if (pool) {
      const results = await pool.process(items);
      for (let i = 0; i < size; i++) {
        const r = results[i];
        let value: O | undefined;
        if ('error' in r) {
          const result = await recoverProcess(chunk, items[i], r.error);
          if (result.skipped) {
            if (result.skip) chunk.skips.push(result.skip);
            dropped(chunk, i);
            continue;
          }
          value = result.value;
        } else value = r.value as O | undefined;
        if (value === undefined) {
          counts.filterCount++;
          dropped(chunk, i);
        } else outputs.list[outputs.n++] = value;
      }
      return collected(outputs);
    }
    const atHand = !hooks.beforeProcess && !hooks.afterProcess;
    const stall: Stall = { value: undefined, error: undefined, threw: false };
    for (let i = 0; i < size; i++) {
      if (atHand) {
        i = processAtHand(chunk, i, outputs, stall);
        if (i === size) break;
      }
      const item = items[i];
      let value: O | undefined;
      try {
        if (atHand) {
          // The item the tight loop stopped at: its processor already ran once.
          if (stall.threw) throw stall.error;
          value = await (stall.value as Promise<O | undefined>);
        } else {
          if (hooks.beforeProcess) for (const l of listeners) l.beforeProcess?.(item);
          const r = processor(item, ctx);
          value = isThenable(r) ? await r : r;
          if (hooks.afterProcess) for (const l of listeners) l.afterProcess?.(item, value);
        }
      } catch (error) {
        const result = await recoverProcess(chunk, item, error);
        if (result.skipped) {
          if (result.skip) chunk.skips.push(result.skip);
          dropped(chunk, i);
          continue;
        }
        value = result.value;
      }
      if (value === undefined) {
        counts.filterCount++;
        dropped(chunk, i);
      } else outputs.list[outputs.n++] = value;
    }
    return collected(outputs);
  }

  /**
   * Processes items from `from` in a tight synchronous loop while the processor returns at
   * once. Returns the index of the first item whose processor returned a promise or threw (what
   * it returned or threw is left in `stall`), or `size` when all are done.
   */
  function processAtHand(chunk: Chunk<I, O>, from: number, outputs: Collector<O>, stall: Stall): number {
    const { items, size, counts } = chunk;
    const process = processor!;
    const list = outputs.list;
    let n = outputs.n;
    let i = from;
    for (; i < size; i++) {
      let r: O | undefined | Promise<O | undefined>;
      try {
        r = process(items[i], ctx);
      } catch (error) {
        stall.threw = true;
        stall.error = error;
        break;
      }
      if (r === undefined) {
        counts.filterCount++;
        dropped(chunk, i);
      } else if (isThenable(r)) {
        stall.threw = false;
        stall.value = r;
        break;
      } else list[n++] = r;
    }
    outputs.n = n;
    return i;
  }

  /**
   * Processes the chunk's items with up to `processConcurrency` of them in flight, each with its
   * own retries; the outputs (and the process skips, for the skip listeners) keep the items'
   * order. An item that fails for good starts no more items: the chunk fails with its error once
   * the items in flight have settled, their filters and skips counted as the failed chunk's.
   */
  async function processConcurrently(chunk: Chunk<I, O>): Promise<O[]> {
    const { items, size, counts } = chunk;
    const outcomes = new Array<Processed<I, O> | undefined>(size);
    let next = 0;
    let failure: { error: unknown } | undefined;
    const lane = async () => {
      while (next < size && !failure) {
        // This node lost the execution: its commit would be refused, so start nothing more.
        if (signal.aborted) failure = { error: new FencedError(fencedMessage(handle)) };
        else {
          const i = next++;
          try {
            outcomes[i] = await processOne(chunk, items[i]);
          } catch (error) {
            failure ??= { error };
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, size) }, lane));
    const outputs = collector<O>(size);
    for (let i = 0; i < size; i++) {
      const o = outcomes[i];
      if (o === undefined) continue; // not started or failed: the chunk fails
      if (o.skipped) {
        if (o.skip) chunk.skips.push(o.skip);
        dropped(chunk, i);
      } else if (o.value === undefined) {
        counts.filterCount++;
        dropped(chunk, i);
      } else outputs.list[outputs.n++] = o.value;
    }
    if (failure) throw failure.error;
    return collected(outputs);
  }

  /** One item through the processor and its listeners, with retries and skips. */
  async function processOne(chunk: Chunk<I, O>, item: I): Promise<Processed<I, O>> {
    try {
      if (hooks.beforeProcess) for (const l of listeners) l.beforeProcess?.(item);
      const r = processor!(item, ctx);
      const value = isThenable(r) ? await r : r;
      if (hooks.afterProcess) for (const l of listeners) l.afterProcess?.(item, value);
      return { skipped: false, value };
    } catch (error) {
      return recoverProcess(chunk, item, error);
    }
  }

  /**
   * After a processing error: retry as the policy allows (telling its listeners), then skip
   * (counted here; the caller records the skip for the listeners) or fail.
   */
  async function recoverProcess(chunk: Chunk<I, O>, item: I, first: unknown): Promise<Processed<I, O>> {
    let error = first;
    for (let attempt = 1; ; attempt++) {
      if (hooks.onProcessError) for (const l of listeners) l.onProcessError?.(item, error);
      if (!isRetryable(def.retry, error)) break;
      const retry = def.retry!;
      if (attempt >= retry.limit) {
        await tellRetry(retry, 'onRetryExhausted', { phase: 'process', error, attempt, item });
        break;
      }
      await tellRetry(retry, 'onRetry', { phase: 'process', error, attempt, item });
      await sleep(backoffDelay(retry, attempt), signal);
      try {
        if (hooks.beforeProcess) for (const l of listeners) l.beforeProcess?.(item);
        const value = await processor!(item, ctx);
        if (hooks.afterProcess) for (const l of listeners) l.afterProcess?.(item, value);
        return { skipped: false, value };
      } catch (next) {
        error = next;
      }
    }
    if (checkSkip('process', error, item)) {
      chunk.counts.processSkipCount++;
      return { skipped: true, skip: { phase: 'process', error, item } };
    }
    if (matchesAny(def.noRollback, error)) {
      ignored('process', error, item);
      return { skipped: true };
    }
    throw error;
  }

  /**
   * Tells the chunk listeners that the chunk failed while it was read or processed (its rollback
   * is counted). A listener failing here is logged: the chunk's own error fails the step.
   */
  async function tellChunkError(error: unknown): Promise<void> {
    try {
      for (const l of listeners) await l.onChunkError?.(ctx, error);
    } catch (err) {
      ctx.log.error({ err }, `an onChunkError listener of step ${def.name} failed`);
    }
  }

  /**
   * A read or process error the skip policy refuses but noRollback lists: as in Spring Batch,
   * the item is dropped and the step goes on. No skip is counted (the skip limit is not
   * spent); the warning says what was dropped.
   */
  function ignored(phase: Phase, error: unknown, item: unknown): void {
    ctx.log.warn({ err: error }, `${describeSkip(phase, error, item)}: dropped (a no-rollback error)`);
  }

  /**
   * Writes one chunk with retry, then item by item if the failure is skippable or a no-rollback
   * one. With processorTransactional the chunk is processed again after each rollback.
   */
  async function writeChunk(chunk: Chunk<I, O>, outputs: O[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Nothing read (the end of input, or only read errors): no write, no write listeners.
        const work = chunk.size === 0 ? async () => 0 : (_tx: Tx, c: ChunkContext) => writeAll(outputs, c);
        const stopping = await commit(chunk, outputs.length, work);
        open.delete(chunk);
        return stopping;
      } catch (error) {
        if (error instanceof FencedError) throw error;
        committed.rollbackCount++;
        for (const l of listeners) await l.onChunkError?.(ctx, error);
        if (isRetryable(def.retry, error)) {
          const retry = def.retry!;
          if (attempt < retry.limit) {
            await tellRetry(retry, 'onRetry', { phase: 'write', error, attempt, items: outputs });
            await sleep(backoffDelay(retry, attempt), signal);
            if (def.processorTransactional) outputs = await reprocess(chunk);
            continue;
          }
          await tellRetry(retry, 'onRetryExhausted', { phase: 'write', error, attempt, items: outputs });
        }
        // A no-rollback error still rolls the chunk back: only item by item can the items after
        // the failing one be written, and the failing one be told apart.
        if (outputs.length > 0 && (isSkippable(def.skip, error) || matchesAny(def.noRollback, error))) {
          return scan(chunk, def.processorTransactional ? await reprocess(chunk) : outputs);
        }
        throw error;
      }
    }
  }

  async function writeAll(outputs: O[], chunk: ChunkContext): Promise<void> {
    for (const l of listeners) await l.beforeWrite?.(outputs);
    try {
      if (outputs.length > 0) await writer.write(outputs, chunk);
    } catch (error) {
      for (const l of listeners) await l.onWriteError?.(outputs, error);
      throw error;
    }
    for (const l of listeners) await l.afterWrite?.(outputs);
  }

  /**
   * Writes the chunk item by item, each item in a transaction of its own with the step's
   * checkpoint, to isolate the failing items: a failing item's transaction rolls back (one
   * rollback each) and the item is skipped if the policy allows. The first commit carries the
   * chunk's reads, skips and filters, a skipped item's write skip goes with the next commit, and
   * the last commit records the reader's position after the chunk. Until then each checkpoint
   * keeps the position before the chunk and marks how many of its items are done, so a restart
   * reads the chunk again and writes on from there: no item is written twice.
   */
  async function scan(chunk: Chunk<I, O>, outputs: O[]): Promise<boolean> {
    const drops = chunk.dropped ?? [];
    let part: Part<I, O> = { counts: chunk.counts, skips: chunk.skips, position: undefined };
    open.delete(chunk);
    open.add(part);
    let stopping = false;
    let done = false; // the last commit (with the chunk's end position) went through
    let input = 0; // index in the chunk's items of the next output
    let d = 0;
    for (let j = 0; j < outputs.length; j++) {
      while (d < drops.length && drops[d] === input) {
        input++;
        d++;
      }
      input++;
      const item = outputs[j];
      const last = j === outputs.length - 1;
      if (last) part.position = chunk.position;
      const mark: ScanMark | null = last ? null : { size: chunk.base + chunk.size, done: chunk.base + input };
      try {
        stopping = (await commit(part, 1, (_tx, c) => writeOne(part, item, c), mark)) || stopping;
        open.delete(part);
        part = { counts: { ...ZERO_COUNTERS }, skips: [], position: undefined };
        open.add(part);
        done = last;
      } catch (error) {
        if (error instanceof FencedError) throw error;
        // The item's own transaction rolled back: counted, and told, like a chunk's.
        committed.rollbackCount++;
        for (const l of listeners) await l.onChunkError?.(ctx, error);
        if (!checkSkip('write', error, item)) throw error;
        part.counts.writeSkipCount++;
        part.skips.push({ phase: 'write', error, item });
      }
    }
    if (!done) {
      // The last item was skipped (or there was none to write): the chunk still ends with a commit.
      part.position = chunk.position;
      stopping = (await commit(part, 0, async () => 0, null)) || stopping;
    }
    open.delete(part);
    return stopping;
  }

  /** One item of a chunk written item by item; a no-rollback error keeps what the writer did. */
  async function writeOne(part: Part<I, O>, item: O, c: ChunkContext): Promise<number> {
    try {
      await writeAll([item], c);
      return 1;
    } catch (error) {
      if (error instanceof FencedError || !matchesAny(def.noRollback, error)) throw error;
      if (checkSkip('write', error, item)) {
        part.counts.writeSkipCount++;
        const skip: SkippedItem<I, O> = { phase: 'write', error, item };
        for (const l of listeners) await l.onSkip?.(skip, c);
        return 0;
      }
      ctx.log.warn({ err: error }, `write of item ${describeItem(item)} failed with a no-rollback error; what the writer did for it is kept`);
      return 1;
    }
  }

  /**
   * One fenced transaction: the work, the skip listeners for the part's read and process skips
   * (and write skips of items rolled back before), the reader's and writer's positions, and the
   * counters. `mark` records (or, null, clears) how far a chunk written item by item got.
   */
  async function commit(
    part: Part<I, O>,
    outputs: number,
    work: (tx: Tx, c: ChunkContext) => Promise<unknown>,
    mark?: ScanMark | null,
  ): Promise<boolean> {
    // Each attempt at the transaction (one redone after a lost connection too) counts the
    // part's write skips from the counts as they were before it.
    const before = { ...part.counts };
    let written = outputs;
    // The step's counters once this part commits, as its checkpoint saves them.
    let next: StepCounters | undefined;
    let result;
    try {
      result = await commitFenced(
        handle,
        async (tx) => {
          Object.assign(part.counts, before);
          const c: ChunkContext = { tx, context: ctx.stepContext, jobExecutionId: handle.execution.id, stepExecutionId: step.id };
          const n = await work(tx, c);
          if (typeof n === 'number') written = n;
          for (const skip of part.skips) for (const l of listeners) await l.onSkip?.(skip, c);
        },
        () => {
          if (part.position) Object.assign(ctx.stepContext, part.position);
          if (mark) ctx.stepContext[SCAN] = mark;
          else if (mark === null) delete ctx.stepContext[SCAN];
          writer.update?.(ctx.stepContext);
          next = addCounters(committed, part.counts);
          next.writeCount += written;
          next.commitCount++;
          progress.commit(ctx.stepContext, next);
          return { stepExecutionId: step.id, counters: next, stepContext: ctx.stepContext, jobContext: ctx.jobContext };
        },
        ctx.stepContext,
      );
    } catch (error) {
      Object.assign(part.counts, before);
      throw error;
    }
    Object.assign(committed, next);
    if (writer.afterCommit) await writer.afterCommit(ctx.stepContext);
    return result.stopping;
  }

  /**
   * Saves the reader's and writer's state as they opened, before the first chunk (as Spring
   * Batch does): a step that fails or dies before its first commit is restarted from the state
   * its first attempt opened with. One commit per step, not counted as one.
   */
  async function saveOpeningState(): Promise<void> {
    reader.update(ctx.stepContext);
    writer.update?.(ctx.stepContext);
    const saved = await commitFenced(handle, async () => undefined, () => ({
      stepExecutionId: step.id, counters: committed, stepContext: ctx.stepContext, jobContext: ctx.jobContext,
    }), ctx.stepContext);
    if (saved.stopping) handle.stopRequested = true;
  }

  /** Processes a rolled-back chunk's items again, forgetting what processing them before gave. */
  function reprocess(chunk: Chunk<I, O>): Promise<O[]> {
    chunk.counts.filterCount = 0;
    chunk.counts.processSkipCount = 0;
    chunk.skips = chunk.skips.filter((s) => s.phase !== 'process');
    chunk.dropped = undefined;
    return processChunk(chunk);
  }

  /** Drops the first `done` items of a chunk read again to resume writing it item by item. */
  function skipDone(chunk: Chunk<I, O>, done: number): void {
    const n = Math.min(done, chunk.size);
    chunk.items = chunk.items.slice(n, chunk.size);
    chunk.size -= n;
    chunk.base = n;
  }
}

/** Step-context key of a chunk being written item by item: see {@link ScanMark}. */
const SCAN = 'ns.scan';

/**
 * How far a chunk written item by item got: its items read again from the position before it
 * (`size` of them), the first `done` are written or skipped already.
 */
interface ScanMark {
  size: number;
  done: number;
}

function scanMark(value: unknown): ScanMark | undefined {
  const m = value as Partial<ScanMark> | undefined;
  return m && Number.isInteger(m.size) && Number.isInteger(m.done) ? { size: m.size!, done: m.done! } : undefined;
}

/** How processing one item ended: its value (undefined: filtered), or dropped (a skip, or a no-rollback error). */
type Processed<I, O> = { skipped: false; value: O | undefined } | { skipped: true; skip?: SkippedItem<I, O> };

/** Records that a chunk's item at `index` has no output (filtered or skipped): indexes ascend. */
function dropped(chunk: { dropped?: number[] }, index: number): void {
  (chunk.dropped ??= []).push(index);
}

/** What one commit adds to the step: a chunk, or part of one written item by item. */
interface Part<I, O> {
  /** What it adds to the step's counters when it commits (writes and commits aside). */
  counts: StepCounters;
  /** Its read and process skips (and write skips of items rolled back), told to the skip listeners inside its transaction. */
  skips: SkippedItem<I, O>[];
  /** The reader's position it records (the chunk's end), or undefined to keep the one before. */
  position: ExecutionContext | undefined;
}

/** One chunk on its way from the reader to its commit. */
interface Chunk<I, O> extends Part<I, O> {
  /** Its items are the first `size`; the array may be reused from chunk to chunk (see itemBuffer). */
  items: I[];
  size: number;
  /** The reader's position after the chunk's last item: what its checkpoint saves. */
  position: ExecutionContext;
  /** The reader is exhausted. */
  eof: boolean;
  /** How many items read were dropped before `items` (done already, in a chunk being resumed). */
  base: number;
  /** Indexes (in `items`) of the items the processor filtered or skipped, ascending; none if undefined. */
  dropped?: number[];
}

/**
 * A chunk's outputs as they are collected: the first `n` of `list`, which is sized for the whole
 * chunk up front. Growing an array item by item copies it several times into fresh memory.
 */
interface Collector<O> {
  list: O[];
  n: number;
}

// Larger arrays created at full length are not kept as plain arrays by V8: those grow instead.
const PRESIZE_MAX = 50_000;

function collector<O>(size: number): Collector<O> {
  return { list: size <= PRESIZE_MAX ? new Array<O>(size) : [], n: 0 };
}

/** The collected outputs as a dense array. */
function collected<O>({ list, n }: Collector<O>): O[] {
  if (list.length !== n) list.length = n;
  return list;
}

/** What the processor returned or threw for the item where the synchronous loop stopped. */
interface Stall {
  value: unknown;
  error: unknown;
  threw: boolean;
}

// How many items a read-ahead reads between yields to pending I/O.
const YIELD_EVERY = 100;

function pickCounters(s: StepCounters): StepCounters {
  return {
    readCount: s.readCount, writeCount: s.writeCount, filterCount: s.filterCount, readSkipCount: s.readSkipCount,
    processSkipCount: s.processSkipCount, writeSkipCount: s.writeSkipCount, commitCount: s.commitCount, rollbackCount: s.rollbackCount,
  };
}

/** Adds to `into` what an uncommitted chunk read, filtered and skipped. */
function addUncommitted(into: StepCounters, c: StepCounters): void {
  into.readCount += c.readCount;
  into.filterCount += c.filterCount;
  into.readSkipCount += c.readSkipCount;
  into.processSkipCount += c.processSkipCount;
  into.writeSkipCount += c.writeSkipCount;
}

export function addCounters(a: StepCounters, b: StepCounters): StepCounters {
  return {
    readCount: a.readCount + b.readCount,
    writeCount: a.writeCount + b.writeCount,
    filterCount: a.filterCount + b.filterCount,
    readSkipCount: a.readSkipCount + b.readSkipCount,
    processSkipCount: a.processSkipCount + b.processSkipCount,
    writeSkipCount: a.writeSkipCount + b.writeSkipCount,
    commitCount: a.commitCount + b.commitCount,
    rollbackCount: a.rollbackCount + b.rollbackCount,
  };
}
