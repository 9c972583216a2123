import { ItemParseError, SkipLimitExceededError, UsageError } from '../core/errors.ts';
import type { ErrorMatcher, Phase, RetryEvent, RetryListener, RetryPolicy, SkipPolicy, SkipQuery } from '../core/job.ts';

function matches(matcher: ErrorMatcher, error: unknown): boolean {
  // A class has a prototype that is an Error (or Error itself); anything else is a predicate.
  const proto = (matcher as { prototype?: unknown }).prototype;
  if (proto instanceof Error || matcher === Error) return error instanceof (matcher as new () => Error);
  return (matcher as (e: unknown) => boolean)(error);
}

export function matchesAny(matchers: readonly ErrorMatcher[] | undefined, error: unknown): boolean {
  return !!matchers && matchers.some((m) => matches(m, error));
}

/**
 * Whether the skip policy skips the error. A UsageError never is: it says the job, its setup or
 * its input must be fixed (a file the reader cannot find the next record in, say, which would
 * fail every read after it), whatever a policy without `on`, or with `on: [Error]`, would skip.
 */
export function isSkippable<P>(policy: SkipPolicy<P> | undefined, error: unknown): boolean {
  if (!policy || error instanceof UsageError) return false;
  if (matchesAny(policy.never, error)) return false;
  return policy.on ? matchesAny(policy.on, error) : true;
}

export function isRetryable(policy: RetryPolicy | undefined, error: unknown): boolean {
  return !!policy && matchesAny(policy.on, error);
}

/**
 * The skip policy's `policy` function's answer for an error `on`/`never` allow (true without
 * one). A promise is refused: the answer must come at once, or skips decided side by side
 * would both see the same skip count.
 */
export function policyAllows<P>(policy: SkipPolicy<P> | undefined, query: SkipQuery): boolean {
  const decide = policy?.policy;
  if (!decide) return true;
  const answer: unknown = decide(query);
  if (typeof answer === 'boolean') return answer;
  const got = answer !== null && typeof (answer as { then?: unknown }).then === 'function' ? 'a promise' : JSON.stringify(answer) ?? String(answer);
  throw new TypeError(`the skip policy function must return true or false, got ${got}`);
}

/** Tells the retry policy's listeners about a retry, or about retries given up. */
export async function tellRetry(policy: RetryPolicy, what: keyof RetryListener, event: RetryEvent): Promise<void> {
  for (const l of policy.listeners ?? []) await l[what]?.(event);
}

/** Waits before retry number `attempt` (1-based), or not at all without a backoff. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const b = policy.backoff;
  if (!b) return 0;
  const delay = b.initialMs * Math.pow(b.multiplier ?? 2, attempt - 1);
  return Math.min(delay, b.maxMs ?? 30_000);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A short, printable description of an item for error messages. */
export function describeItem(item: unknown): string {
  let text: string;
  try {
    text = typeof item === 'string' ? item : JSON.stringify(item) ?? String(item);
  } catch {
    text = String(item);
  }
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/** Where a skipped error happened, e.g. "line 12 of people.csv" or "item {...}". */
export function describeSkip(phase: Phase, error: unknown, item: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  if (error instanceof ItemParseError) return reason;
  if (phase === 'read') return `read error: ${reason}`;
  return `${phase} of item ${describeItem(item)}: ${reason}`;
}

export function skipLimitError(limit: number, phase: Phase, error: unknown, item: unknown): SkipLimitExceededError {
  return new SkipLimitExceededError(`skip limit ${limit} exceeded in ${phase}: ${describeSkip(phase, error, item)}`, );
}
