/**
 * The retry loop behind every connection wait: it keeps trying for the whole configured time
 * (counted from the first attempt), no less, and not much more.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { connectionErrorText, DatabaseUnreachableError, isCapacityError, isConnectionError, isDnsFailure, retrying } from '../../src/repository/connection-errors.ts';

const tooMany = (): Error => Object.assign(new Error('sorry, too many clients already'), { code: '53300' });

describe('retrying', () => {
  it('retries a transient failure for the whole window, then gives up with the time it waited', async () => {
    let attempts = 0;
    const t0 = performance.now();
    const err = await retrying(
      async () => {
        attempts++;
        throw tooMany();
      },
      { forMs: 1500, transient: isCapacityError, giveUp: (e, waited) => Object.assign(new Error('gave up'), { cause: e, waited }) },
    ).catch((e: Error & { waited: number }) => e);
    const took = performance.now() - t0;
    expect(err.message).toBe('gave up');
    expect(err.waited).toBeGreaterThanOrEqual(1500);
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(2500);
    // 50, 100, 200, 400, 800 ms backoff (jittered down by at most half): at least 5 attempts.
    expect(attempts).toBeGreaterThanOrEqual(5);
  });

  it('throws a failure that is not transient at once, and returns as soon as an attempt succeeds', async () => {
    let attempts = 0;
    const wrong = new Error('password authentication failed');
    await expect(retrying(async () => { attempts++; throw wrong; }, { forMs: 10_000, transient: isCapacityError })).rejects.toBe(wrong);
    expect(attempts).toBe(1);

    attempts = 0;
    const value = await retrying(async () => {
      if (++attempts < 3) throw tooMany();
      return 'connected';
    }, { forMs: 10_000, transient: isCapacityError });
    expect(value).toBe('connected');
    expect(attempts).toBe(3);
  });

  it('with no time to retry, makes exactly one attempt', async () => {
    let attempts = 0;
    await expect(retrying(async () => { attempts++; throw tooMany(); }, { forMs: 0, transient: isCapacityError })).rejects.toMatchObject({ code: '53300' });
    expect(attempts).toBe(1);
  });

  it('counts a host name that does not resolve as the database unreachable only when the repository\'s connection failed on it, never as a capacity error', async () => {
    // The driver's own error for a name under .invalid, which never resolves (RFC 2606).
    const client = new pg.Client({ connectionString: 'postgres://postgres:pw@nightshift-no-such-host.invalid:5432/test' });
    const err = await client.connect().then(() => undefined, (e: unknown) => e);
    await client.end().catch(() => undefined);
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
    expect(isDnsFailure(err)).toBe(true);
    expect(isDnsFailure(Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN', hostname: 'db' }))).toBe(true);
    // The repository's own connection attempt failing on it is the database being unreachable,
    // which commits wait out; the same error from a job's own call (a mistyped webhook host) is
    // the job's failure, not a database outage.
    expect(isConnectionError(new DatabaseUnreachableError('cannot connect to postgres://postgres@nightshift-no-such-host.invalid/test', { cause: err }))).toBe(true);
    expect(isConnectionError(err)).toBe(false);
    expect(isConnectionError(new TypeError('fetch failed', { cause: err }))).toBe(false);
    // Turned away for capacity is retried even before the first connection; a name that does not resolve is not.
    expect(isCapacityError(err)).toBe(false);
    expect(connectionErrorText(new Error('cannot connect', { cause: err }))).toBe('the host name "nightshift-no-such-host.invalid" does not resolve (ENOTFOUND)');
  });
});
