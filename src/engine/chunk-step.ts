import { FencedError } from '../core/errors.ts';
import { toStreamWriter, type ChunkContext } from '../core/items.ts';
import type { ChunkListener, ChunkStepDefinition, Phase, SkippedItem, StepContext } from '../core/job.ts';
import { ZERO_COUNTERS, skipCount, type StepCounters, type StepExecution } from '../core/model.ts';
import type { Tx } from '../repository/tx.ts';
import { commitFenced, fencedMessage } from './checkpoint.ts';
import type { ExecutionHandle } from './execution-handle.ts';
import { backoffDelay, isRetryable, isSkippable, matchesAny, skipLimitError, sleep } from './fault-tolerance.ts';
import { adaptReader, isThenable } from './reader-adapter.ts';
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
  const skipLimit = typeof def.skip?.limit === 'function' ? def.skip.limit(ctx) : (def.skip?.limit ?? 0);
  const signal = handle.lost.signal;

  // Counters as committed; each chunk accumulates its own contribution until it commits.
  const committed: StepCounters = { ...pickCounters(step) };
  let contribution: StepCounters = { ...ZERO_COUNTERS };
  const pendingSkips: SkippedItem[] = [];

  const checkSkip = (phase: Phase, error: unknown, item: unknown) => {
    if (!isSkippable(def.skip, error)) return false;
    if (skipCount(committed) + skipCount(contribution) + 1 > skipLimit) throw skipLimitError(skipLimit, phase, error, item);
    return true;
  };

  const publish = () => Object.assign(step, committed);

  await reader.open(ctx.stepContext);
  // A chunk that fails while reading or processing is rolled back like one that fails writing.
  let inChunk = false;
  try {
    await writer.open?.(ctx.stepContext);
    let eof = false;
    while (!eof) {
      if (signal.aborted) throw new FencedError(fencedMessage(handle));
      if (handle.stopRequested) return 'STOPPED';
      for (const l of listeners) await l.beforeChunk?.(ctx);
      inChunk = true;

      // ---- read ----
      const items: I[] = [];
      while (items.length < chunkSize) {
        let item: I | undefined;
        try {
          if (hooks.beforeRead) for (const l of listeners) l.beforeRead?.();
          const r = reader.read();
          item = isThenable(r) ? await r : r;
        } catch (error) {
          if (hooks.onReadError) for (const l of listeners) l.onReadError?.(error);
          if (!checkSkip('read', error, undefined)) throw error;
          contribution.readSkipCount++;
          pendingSkips.push({ phase: 'read', error });
          continue;
        }
        if (item === undefined) {
          eof = true;
          break;
        }
        if (hooks.afterRead) for (const l of listeners) l.afterRead?.(item);
        items.push(item);
        contribution.readCount++;
        if (handle.stopRequested) break;
      }

      // ---- process ----
      let outputs: O[];
      if (!processor) {
        outputs = items as unknown as O[];
      } else if (pool) {
        outputs = [];
        const results = await pool.process(items);
        for (let i = 0; i < items.length; i++) {
          const r = results[i];
          let value: O | undefined;
          if ('error' in r) {
            const result = await recoverProcess(items[i], r.error);
            if (result.skipped) continue;
            value = result.value;
          } else value = r.value as O | undefined;
          if (value === undefined) contribution.filterCount++;
          else outputs.push(value);
        }
      } else {
        outputs = [];
        for (const item of items) {
          // Synchronous unless the processor returns a promise or fails: no promise per item.
          let value: O | undefined;
          try {
            if (hooks.beforeProcess) for (const l of listeners) l.beforeProcess?.(item);
            const r = processor(item, ctx);
            value = isThenable(r) ? await r : r;
            if (hooks.afterProcess) for (const l of listeners) l.afterProcess?.(item, value);
          } catch (error) {
            const result = await recoverProcess(item, error);
            if (result.skipped) continue;
            value = result.value;
          }
          if (value === undefined) contribution.filterCount++;
          else outputs.push(value);
        }
      }

      // ---- write + checkpoint ----
      const nothingToCommit = items.length === 0 && contribution.readSkipCount === 0 && committed.commitCount > 0;
      inChunk = false;
      if (!nothingToCommit) {
        const stopping = await writeChunk(outputs);
        publish();
        handle.onProgress?.(step);
        for (const l of listeners) await l.afterChunk?.(ctx);
        if (stopping) handle.stopRequested = true;
      }
    }
    return handle.stopRequested && !eof ? 'STOPPED' : 'COMPLETED';
  } catch (error) {
    if (inChunk && !(error instanceof FencedError)) committed.rollbackCount++;
    throw error;
  } finally {
    publish();
    await pool?.close();
    await writer.close?.();
    await reader.close();
  }

  /** After a processing error: retry as the policy allows, then skip or fail. */
  async function recoverProcess(item: I, first: unknown): Promise<{ skipped: boolean; value?: O }> {
    let error = first;
    for (let attempt = 1; ; attempt++) {
      if (hooks.onProcessError) for (const l of listeners) l.onProcessError?.(item, error);
      if (!(isRetryable(def.retry, error) && attempt < def.retry!.limit)) break;
      await sleep(backoffDelay(def.retry!, attempt), signal);
      try {
        if (hooks.beforeProcess) for (const l of listeners) l.beforeProcess?.(item);
        const value = await processor!(item, ctx);
        if (hooks.afterProcess) for (const l of listeners) l.afterProcess?.(item, value);
        return { skipped: false, value };
      } catch (next) {
        error = next;
      }
    }
    if (!checkSkip('process', error, item)) throw error;
    contribution.processSkipCount++;
    pendingSkips.push({ phase: 'process', error, item });
    return { skipped: true };
  }

  /** Writes one chunk with retry, then item-by-item isolation if the failure is skippable. */
  async function writeChunk(outputs: O[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await commit(outputs, (_tx, chunk) => writeAll(outputs, chunk));
      } catch (error) {
        if (error instanceof FencedError) throw error;
        committed.rollbackCount++;
        for (const l of listeners) await l.onChunkError?.(ctx, error);
        if (isRetryable(def.retry, error) && attempt < def.retry!.limit) {
          await sleep(backoffDelay(def.retry!, attempt), signal);
          continue;
        }
        if (outputs.length > 0 && isSkippable(def.skip, error)) return scan(outputs);
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
      if (matchesAny(def.noRollback, error)) return;
      throw error;
    }
    for (const l of listeners) await l.afterWrite?.(outputs);
  }

  /** Isolates the failing items: each item is written under its own savepoint in one transaction. */
  async function scan(outputs: O[]): Promise<boolean> {
    return commit(outputs, async (tx, chunk) => {
      let written = 0;
      for (const item of outputs) {
        await tx.exec('SAVEPOINT ns_item');
        try {
          await writeAll([item], chunk);
          await tx.exec('RELEASE SAVEPOINT ns_item');
          written++;
        } catch (error) {
          await tx.exec('ROLLBACK TO SAVEPOINT ns_item');
          await tx.exec('RELEASE SAVEPOINT ns_item');
          if (error instanceof FencedError || !checkSkip('write', error, item)) throw error;
          contribution.writeSkipCount++;
          const skip: SkippedItem = { phase: 'write', error, item };
          for (const l of listeners) await l.onSkip?.(skip, chunk);
        }
      }
      return written;
    });
  }

  /**
   * One fenced transaction: the work, the skip listeners for this chunk's read and process
   * skips, the reader's and writer's positions, and the counters.
   */
  async function commit(outputs: O[], work: (tx: Tx, chunk: ChunkContext) => Promise<unknown>): Promise<boolean> {
    const before = { ...contribution };
    const written = { n: outputs.length };
    try {
      const result = await commitFenced(
        handle,
        async (tx) => {
          const chunk: ChunkContext = { tx, context: ctx.stepContext, jobExecutionId: handle.execution.id, stepExecutionId: step.id };
          const n = await work(tx, chunk);
          if (typeof n === 'number') written.n = n;
          for (const skip of pendingSkips) for (const l of listeners) await l.onSkip?.(skip, chunk);
        },
        () => {
          reader.update(ctx.stepContext);
          writer.update?.(ctx.stepContext);
          const next = addCounters(committed, contribution);
          next.writeCount += written.n;
          next.commitCount++;
          return { stepExecutionId: step.id, counters: next, stepContext: ctx.stepContext, jobContext: ctx.jobContext };
        },
      );
      Object.assign(committed, addCounters(committed, contribution));
      committed.writeCount += written.n;
      committed.commitCount++;
      contribution = { ...ZERO_COUNTERS };
      pendingSkips.length = 0;
      await writer.afterCommit?.(ctx.stepContext);
      return result.stopping;
    } catch (error) {
      // Skips counted inside a failed transaction are counted again when it is redone.
      contribution = before;
      throw error;
    }
  }
}

function pickCounters(s: StepCounters): StepCounters {
  return {
    readCount: s.readCount, writeCount: s.writeCount, filterCount: s.filterCount, readSkipCount: s.readSkipCount,
    processSkipCount: s.processSkipCount, writeSkipCount: s.writeSkipCount, commitCount: s.commitCount, rollbackCount: s.rollbackCount,
  };
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
