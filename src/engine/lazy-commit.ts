import type { ExecutionContext } from '../core/model.ts';
import type { Tx } from '../repository/tx.ts';
import { UsageError } from '../core/errors.ts';
import { commitFenced, RECONNECT_FOR_MS, restoreContext, type CheckpointState, type CommitResult } from './checkpoint.ts';
import type { ExecutionHandle } from './execution-handle.ts';

/** What {@link commitLazily} did with the checkpoint. */
export interface LazyCommitResult<T> extends CommitResult<T> {
  /**
   * The call used no transaction and `mayDefer` allowed it: nothing was committed, and the
   * checkpoint's state is left for the step's end to record.
   */
  deferred: boolean;
}

/** Thrown into a lazy call's transaction when a lost connection made it begin again. */
class CallAgain extends Error {}

/**
 * Runs `call` with a transaction that begins only when the call first uses it, and commits its
 * work with the step's checkpoint, fenced, as {@link commitFenced} does. A call that never used
 * its transaction has nothing of its own to commit: if `mayDefer(value)` the checkpoint is not
 * committed at all (the step's end, written next, records the same state); otherwise the
 * checkpoint commits alone. Saving the transaction of a tasklet that does its work elsewhere (or
 * none) is what lets short jobs end in one grouped write.
 *
 * A connection lost inside the transaction calls `call` again in a new one, as commitFenced does
 * for its work; `stepContext` is put back as it was before the call when nothing commits.
 */
export async function commitLazily<T>(
  handle: ExecutionHandle,
  call: (tx: Tx) => Promise<T>,
  prepare: () => CheckpointState,
  stepContext: ExecutionContext,
  mayDefer: (value: T) => boolean,
): Promise<LazyCommitResult<T>> {
  const before = { ...stepContext };
  // Calls made again after lost connections share one deadline, as the retries of one commit do.
  const giveUpAt = Date.now() + RECONNECT_FOR_MS;
  for (;;) {
    const lazy = lazyTransaction<T>(handle, prepare, stepContext);
    try {
      let value: T;
      try {
        value = await call(lazy.tx);
      } catch (error) {
        lazy.close();
        await lazy.rollback(error);
        throw error;
      }
      lazy.close();
      if (lazy.used()) return { ...(await lazy.commit(value)), deferred: false };
      if (mayDefer(value)) return { value, stopping: false, deferred: true };
      return { ...(await commitFenced(handle, async () => value, prepare, stepContext)), deferred: false };
    } catch (error) {
      restoreContext(stepContext, before);
      if (!(error instanceof CallAgain)) throw error;
      if (Date.now() > giveUpAt) {
        throw new Error(`the tasklet's transaction kept losing its connection for ${RECONNECT_FOR_MS / 60_000} minutes; giving up`);
      }
    } finally {
      lazy.close();
    }
  }
}

type Outcome<T> = { value: T } | { error: unknown };

function lazyTransaction<T>(handle: ExecutionHandle, prepare: () => CheckpointState, stepContext: ExecutionContext) {
  let opened: Promise<CommitResult<T>> | undefined;
  let real: Promise<Tx> | undefined;
  let finish!: (o: Outcome<T>) => void;
  const open = (): Promise<Tx> => {
    if (real) return real;
    const outcome = new Promise<Outcome<T>>((r) => (finish = r));
    let gotTx!: (tx: Tx) => void;
    let failed!: (error: unknown) => void;
    real = new Promise<Tx>((resolve, reject) => ((gotTx = resolve), (failed = reject)));
    let calls = 0;
    opened = commitFenced(
      handle,
      async (tx) => {
        // A retry after a lost connection: the call's statements went with the old transaction.
        if (calls++ > 0) throw new CallAgain();
        gotTx(tx);
        const o = await outcome;
        if ('error' in o) throw o.error;
        return o.value;
      },
      prepare,
      stepContext,
    );
    opened.catch(failed);
    return real;
  };
  // After the call ended, its transaction is gone: a late use (something the call left running)
  // fails instead of beginning one that nothing would end, or running inside another.
  let closed = false;
  const live = (): Promise<Tx> =>
    closed ? Promise.reject(new UsageError('a tasklet used its transaction (tx) after its call ended; await all work on tx before returning')) : open();
  const tx: Tx = {
    dialect: handle.db.dialect,
    query: (sql, params) => live().then((t) => (closed ? live() : t)).then((t) => t.query(sql, params)),
    execute: (sql, params) => live().then((t) => (closed ? live() : t)).then((t) => t.execute(sql, params)),
    exec: (sql) => live().then((t) => (closed ? live() : t)).then((t) => t.exec(sql)),
  };
  return {
    tx,
    close: () => void (closed = true),
    used: () => opened !== undefined,
    /** Commits the call's transaction (it began) with `value`. */
    commit(value: T): Promise<CommitResult<T>> {
      finish({ value });
      return opened!;
    },
    /** Rolls the call's transaction back, if it began; throws CallAgain if a lost connection ended it. */
    async rollback(error: unknown): Promise<void> {
      if (!opened) return;
      finish({ error });
      const ended = await opened.then(() => undefined, (e: unknown) => e);
      if (ended instanceof CallAgain) throw ended;
    },
  };
}
