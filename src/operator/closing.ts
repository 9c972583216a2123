import { ClosedError } from '../core/errors.ts';

/** The names of `T`'s methods that return no promise (they refuse by throwing, not by rejecting). */
export type SyncMethods<T> = {
  [K in keyof T]-?: T[K] extends (...args: never[]) => infer R ? (R extends PromiseLike<unknown> ? never : K) : never;
}[keyof T] & string;

/**
 * How the gate treats each method: every method that returns no promise must be named `sync`
 * (it refuses by throwing; the compiler checks the naming) or `always` (it is never refused: a
 * request to stop must not throw in a signal handler while close() waits), and a method that may
 * wait without end for something else (as `waitForEnd` for another node's execution) is named
 * `waits` (see {@link CloseGate.close}).
 */
export type MethodKinds<T> = Record<SyncMethods<T>, 'sync' | 'always'> & Partial<Record<Exclude<keyof T & string, SyncMethods<T>>, 'waits'>>;

/**
 * What an operator's `close()` goes through: once it is called, every method `guard` wrapped
 * refuses with a ClosedError naming it, and close() lets the calls already under way end before
 * it releases anything.
 */
export interface CloseGate {
  /** Aborted once the work under way has ended, while closing: the `waits` calls end then. */
  readonly ending: AbortSignal;
  /**
   * `api` with each of its methods (own function properties) refusing once close() was called,
   * and counted while under way. `path` is how the ClosedError names them (`explorer.` before
   * the explorer's); `close` itself, and the `always` methods, are left as they are.
   */
  guard<T extends object>(api: T, kinds: MethodKinds<T>, path?: string): T;
  /**
   * Closes, once (a later call returns the first call's promise): refuses calls from now on,
   * waits for the calls under way except the `waits` ones and then for `work` (the executions
   * this process runs), aborts `ending`, waits for the `waits` calls, then runs `release`.
   */
  close(work: () => Promise<void>, release: () => Promise<void>): Promise<void>;
}

export function createCloseGate(): CloseGate {
  const ending = new AbortController();
  const underWay = { calls: new Set<Promise<unknown>>(), waits: new Set<Promise<unknown>>() };
  let closing: Promise<void> | undefined;
  const settled = (calls: Set<Promise<unknown>>) => Promise.allSettled([...calls]);

  return {
    ending: ending.signal,
    guard<T extends object>(api: T, kinds: MethodKinds<T>, path = ''): T {
      const kindOf = kinds as Partial<Record<string, 'sync' | 'always' | 'waits'>>;
      const guarded = { ...api } as Record<string, unknown>;
      for (const [name, method] of Object.entries(api)) {
        if (typeof method !== 'function' || name === 'close' || kindOf[name] === 'always') continue;
        guarded[name] = (...args: unknown[]): unknown => {
          if (closing) {
            const refused = new ClosedError(path + name);
            if (kindOf[name] === 'sync') throw refused;
            return Promise.reject(refused);
          }
          const result: unknown = Reflect.apply(method, api, args);
          if (result instanceof Promise) {
            const calls = kindOf[name] === 'waits' ? underWay.waits : underWay.calls;
            const call = result.then(() => undefined, () => undefined);
            calls.add(call);
            void call.then(() => calls.delete(call));
          }
          return result;
        };
      }
      return guarded as T;
    },
    close(work, release) {
      return (closing ??= (async () => {
        await settled(underWay.calls);
        try {
          await work();
        } finally {
          // Also when the work failed: the waits end and the repository is released all the same.
          ending.abort();
          await settled(underWay.waits);
          await release();
        }
      })());
    },
  };
}
