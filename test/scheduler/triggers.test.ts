/**
 * The scheduler's pure rules: fire-time arithmetic, the misfire decision and trigger validation.
 */
import { describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { ParameterError, UsageError } from '../../src/core/errors.ts';
import { CronError } from '../../src/scheduler/cron.ts';
import { decide, latestAtOrBefore, nextAfter, validateSchedule, validateSchedules } from '../../src/scheduler/triggers.ts';

const jobs = [noop, count];
const T = (iso: string) => Date.parse(iso);

describe('fire times', () => {
  it('interval triggers fire at multiples of the interval since the epoch', () => {
    const every = { cron: null, tz: null, everyMs: 1000 };
    expect(nextAfter(every, T('2024-01-01T00:00:00.000Z'))).toBe(T('2024-01-01T00:00:01.000Z'));
    expect(nextAfter(every, T('2024-01-01T00:00:00.999Z'))).toBe(T('2024-01-01T00:00:01.000Z'));
    const minute = { cron: null, tz: null, everyMs: 60_000 };
    expect(nextAfter(minute, T('2024-01-01T10:17:30.000Z'))).toBe(T('2024-01-01T10:18:00.000Z'));
  });

  it('cron triggers use the expression in its time zone', () => {
    const t = { cron: '0 30 2 * * ?', tz: 'America/New_York', everyMs: null };
    // 02:30 does not exist on the spring-forward day: Quartz skips that day.
    expect(new Date(nextAfter(t, T('2024-03-09T08:00:00Z'))!).toISOString()).toBe('2024-03-11T06:30:00.000Z');
    expect(nextAfter({ cron: '0 0 0 1 1 ? 2020', tz: 'UTC', everyMs: null }, T('2024-01-01T00:00:00Z'))).toBeNull();
  });

  it('finds the latest fire time before now, also after a long outage', () => {
    const cron = { cron: '*/10 * * * * ?', tz: 'UTC', everyMs: null };
    const from = T('2024-01-01T00:00:00Z');
    expect(latestAtOrBefore(cron, from, T('2024-01-01T00:00:05Z'))).toBe(from);
    expect(latestAtOrBefore(cron, from, T('2024-01-01T00:00:29.999Z'))).toBe(T('2024-01-01T00:00:20Z'));
    expect(latestAtOrBefore(cron, from, T('2024-03-05T07:08:09.5Z'))).toBe(T('2024-03-05T07:08:00Z'));
    const sparse = { cron: '0 0 12 29 2 ?', tz: 'UTC', everyMs: null }; // leap days only
    expect(latestAtOrBefore(sparse, T('2016-02-29T12:00:00Z'), T('2024-06-01T00:00:00Z'))).toBe(T('2024-02-29T12:00:00Z'));
    const every = { cron: null, tz: null, everyMs: 1000 };
    expect(latestAtOrBefore(every, from, from + 7_300)).toBe(from + 7_000);
  });
});

describe('the misfire decision', () => {
  const base = { cron: null, tz: null, everyMs: 1000, misfireThresholdMs: 2000 };
  const cur = T('2024-01-01T00:00:10Z');

  it('fires on time, and catches up one by one within the threshold', () => {
    expect(decide({ ...base, misfire: 'skip' }, cur, cur + 3)).toEqual({ action: 'fire', fireTime: cur, next: cur + 1000, late: 3 });
    expect(decide({ ...base, misfire: 'skip' }, cur, cur + 2000)).toMatchObject({ action: 'fire', fireTime: cur, next: cur + 1000 });
  });

  it('fire-once fires the latest missed time once, then continues after now', () => {
    expect(decide({ ...base, misfire: 'fire-once' }, cur, cur + 5300)).toEqual({
      action: 'misfire', policy: 'fire-once', fireTime: cur + 5000, missedFrom: cur, next: cur + 6000, late: 300,
    });
  });

  it('skip fires nothing and continues after now', () => {
    expect(decide({ ...base, misfire: 'skip' }, cur, cur + 2001)).toMatchObject({
      action: 'misfire', policy: 'skip', fireTime: cur + 2000, missedFrom: cur, next: cur + 3000,
    });
  });
});

describe('validation', () => {
  it('accepts cron and interval triggers and keeps only the given parameters, typed', () => {
    expect(validateSchedule({ name: 'n1', job: 'count', cron: '0 * * * * ?', tz: 'Europe/Paris', params: { items: '5' } }, jobs)).toEqual({
      name: 'n1', job: 'count', cron: '0 * * * * ?', tz: 'Europe/Paris', everyMs: null, params: { items: 5 },
      misfire: 'fire-once', misfireThresholdMs: 5000, noConcurrent: false,
    });
    expect(validateSchedule({ name: 'n2', job: 'noop', everyMs: 1000, misfire: 'skip', noConcurrent: true }, jobs)).toMatchObject({
      cron: null, tz: null, everyMs: 1000, misfire: 'skip', noConcurrent: true,
    });
  });

  it.each([
    [{ name: 'x', job: 'nope', everyMs: 1000 }, /unknown job nope/],
    [{ name: 'x', job: 'noop' }, /either a cron expression or an interval/],
    [{ name: 'x', job: 'noop', everyMs: 1000, cron: '* * * * * ?' }, /not both/],
    [{ name: 'x', job: 'noop', everyMs: 50 }, /interval must be a whole number of milliseconds >= 100/],
    [{ name: 'x', job: 'noop', everyMs: 1000, tz: 'UTC' }, /tz applies to cron expressions only/],
    [{ name: 'x', job: 'noop', cron: '0 0 * * * ?', tz: 'Mars/Olympus' }, /unknown time zone "Mars\/Olympus"/],
    [{ name: 'x', job: 'noop', cron: '0 0 0 1 1 ? 2020' }, /never fires again/],
    [{ name: 'x', job: 'count', everyMs: 1000, params: { items: 'many' } }, /parameter items must be an integer/],
    [{ name: 'x', job: 'count', everyMs: 1000, params: { bogus: 1 } }, /unknown parameter bogus/],
    [{ name: 'x', job: 'noop', everyMs: 1000, params: { fireTime: '2024-01-01' } }, /fireTime is set by the scheduler/],
    [{ name: 'x', job: 'noop', everyMs: 1000, misfire: 'later' as 'skip' }, /misfire policy must be fire-once or skip/],
    [{ name: 'x', job: 'noop', everyMs: 1000, misfireThresholdMs: -1 }, /misfire threshold/],
    [{ name: 'bad name', job: 'noop', everyMs: 1000 }, /schedule name "bad name" is not valid/],
    [{ name: 'x', job: 'noop', everyMs: 1000, cronn: 'x' } as never, /unknown property cronn/],
  ])('rejects %j', (spec, message) => {
    expect(() => validateSchedule(spec, jobs)).toThrow(message);
  });

  it('names the cron field at fault', () => {
    let err: unknown;
    try {
      validateSchedule({ name: 'x', job: 'noop', cron: '0 61 * * * ?' }, jobs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CronError);
    expect((err as CronError).field).toBe('minute');
  });

  it.each([
    [{ name: 'x', job: 'noop', cron: '0 0 25 * * ?' }, 'schedule x: invalid cron expression "0 0 25 * * ?": hour: 25 is out of range 0-23', CronError],
    [{ name: 'x', job: 'count', everyMs: 1000, params: { items: 'many' } }, 'schedule x: job count: parameter items must be an integer, got "many"', ParameterError],
    [{ name: 'x', job: 'jj', everyMs: 1000 }, 'schedule x: unknown job jj (known: noop, count)', UsageError],
    [{ name: 'x', job: 'noop', everyMs: 1000, cronn: 'x' } as never, 'schedule x: unknown property cronn', UsageError],
  ])('names the schedule in every error, of the same kind: %j', (spec, message, kind) => {
    let err: unknown;
    try {
      validateSchedule(spec, jobs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(kind);
    expect((err as Error).message).toBe(message);
  });

  it('rejects two declared schedules with one name', () => {
    expect(() => validateSchedules([{ name: 'a', job: 'noop', everyMs: 1000 }, { name: 'a', job: 'noop', everyMs: 2000 }], jobs)).toThrow(/two schedules are named a/);
  });
});
