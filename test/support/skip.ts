/**
 * Skips that say why. A test skipped with a reason (`ctx.skip(condition, reason)`, which these
 * helpers wrap) shows under it in `npm test`'s skip summary (test/support/skip-reporter.ts); a
 * skip without one fails the run there.
 */
import { beforeEach, it, type TestContext } from 'vitest';

type Body = (ctx: TestContext) => unknown;
type Define = (name: string, fn: (ctx: TestContext) => Promise<void>, timeout?: number) => void;

/** `it` that runs only when `condition` holds, and otherwise is skipped with `reason`. */
export function itWhen(condition: boolean, reason: string, run: Define = it) {
  return (name: string, body: Body, timeout?: number) =>
    run(name, async (ctx) => {
      ctx.skip(!condition, reason);
      await body(ctx);
    }, timeout);
}

/** Skips every test of the enclosing describe block (or file) with `reason` unless `condition` holds. */
export function skipAllUnless(condition: boolean, reason: string): void {
  beforeEach((ctx) => {
    ctx.skip(!condition, reason);
  });
}
