/**
 * Records a chunk step's progress in its ExecutionContext (see core/progress.ts), so that it is
 * saved with each checkpoint at no extra statement. A reader that reports how far it is (its
 * `progress()` with `done`) has that saved with its position, by the reader adapter; for any
 * other reader the engine counts items: what earlier executions of the step got to, plus the
 * items this one has read (and read errors skipped) as of each commit.
 */
import type { ItemStreamReader } from '../core/items.ts';
import type { ExecutionContext, StepCounters } from '../core/model.ts';
import { PROGRESS_KEY, progressOf, type StepProgress } from '../core/progress.ts';

/** Updates the progress in the step's context as a commit saves it. */
export interface ProgressRecorder {
  /** Called while a commit's checkpoint is built, with the step's counters as of that commit. */
  commit(context: ExecutionContext, counters: StepCounters): void;
}

const NONE: ProgressRecorder = { commit() {} };

const amount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/**
 * The reader's own progress, when it reports how far it is: what its position says. Undefined
 * for readers that do not (the engine counts their items).
 */
export function reportedProgress(reader: ItemStreamReader<unknown>): StepProgress | undefined {
  const p = reader.progress?.();
  if (!p || !amount(p.done) || (p.unit !== 'items' && p.unit !== 'bytes')) return undefined;
  return { unit: p.unit, done: p.done, total: amount(p.total) ? Math.max(p.total, p.done) : null };
}

/** Called once the reader is open: records the progress it opens with, and how to go on. */
export function openProgress(reader: ItemStreamReader<unknown>, context: ExecutionContext): ProgressRecorder {
  const own = reportedProgress(reader);
  if (own) {
    context[PROGRESS_KEY] = own;
    return NONE;
  }
  const p = reader.progress?.();
  const total = p?.unit === 'items' && amount(p.total) ? p.total : null;
  const before = progressOf(context);
  const base = before?.unit === 'items' ? before.done : 0;
  context[PROGRESS_KEY] = { unit: 'items', done: base, total } satisfies StepProgress;
  return {
    commit(ctx, c) {
      const done = base + c.readCount + c.readSkipCount;
      ctx[PROGRESS_KEY] = { unit: 'items', done, total: total === null ? null : Math.max(total, done) } satisfies StepProgress;
    },
  };
}
