/**
 * The scheduler's pure rules: fire-time arithmetic, the misfire decision and trigger validation.
 */
import { describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { ParameterError, UsageError } from '../../src/core/errors.ts';
import { CronError } from '../../src/scheduler/cron.ts';
import { decide, firstFireTime, latestAtOrBefore, nextAfter, validateSchedule, validateSchedules } from '../../src/scheduler/triggers.ts';

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
      name: 'n1', job: 'count', cron: '0 * * * * ?', tz: 'Europe/Paris', everyMs: null, at: null, startAt: null, endAt: null, params: { items: 5 },
      misfire: 'fire-once', misfireThresholdMs: 5000, noConcurrent: false,
    });
    expect(validateSchedule({ name: 'n2', job: 'noop', everyMs: 1000, misfire: 'skip', noConcurrent: true }, jobs)).toMatchObject({
      cron: null, tz: null, everyMs: 1000, misfire: 'skip', noConcurrent: true,
    });
  });

  it.each([
    [{ name: 'x', job: 'nope', everyMs: 1000 }, /unknown job nope/],
    [{ name: 'x', job: 'noop' }, /give a cron expression \(cron\), an interval \(everyMs\) or one time \(at\)/],
    [{ name: 'x', job: 'noop', everyMs: 1000, cron: '* * * * * ?' }, /give one of cron, everyMs and at, not cron and everyMs/],
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

describe('one-shot triggers and bounds', () => {
  const D = (iso: string) => new Date(iso);
  const at = { cron: null, tz: null, everyMs: null, at: D('2024-01-01T00:00:10Z') };
  const bounded = { cron: null, tz: null, everyMs: 1000, startAt: D('2024-01-01T00:00:05.500Z'), endAt: D('2024-01-01T00:00:09Z') };
  const cronBounded = { cron: '*/2 * * * * ?', tz: 'UTC', everyMs: null, startAt: D('2024-01-01T00:00:05Z'), endAt: D('2024-01-01T00:00:09Z') };

  it('a one-shot has its time as first fire time, even when past, and none after it', () => {
    expect(firstFireTime(at, T('2024-01-01T00:00:00Z'))).toBe(T('2024-01-01T00:00:10Z'));
    expect(firstFireTime(at, T('2024-06-01T00:00:00Z'))).toBe(T('2024-01-01T00:00:10Z'));
    expect(nextAfter(at, T('2024-01-01T00:00:09.999Z'))).toBe(T('2024-01-01T00:00:10Z'));
    expect(nextAfter(at, T('2024-01-01T00:00:10Z'))).toBeNull();
  });

  it('a one-shot found late fires once as a misfire (or is skipped), then has no next fire time', () => {
    const cur = T('2024-01-01T00:00:10Z');
    const t = { ...at, misfireThresholdMs: 5000 };
    expect(decide({ ...t, misfire: 'fire-once' }, cur, cur + 3)).toEqual({ action: 'fire', fireTime: cur, next: null, late: 3 });
    expect(decide({ ...t, misfire: 'fire-once' }, cur, cur + 60_000)).toEqual({
      action: 'misfire', policy: 'fire-once', fireTime: cur, missedFrom: cur, next: null, late: 60_000,
    });
    expect(decide({ ...t, misfire: 'skip' }, cur, cur + 60_000)).toMatchObject({ action: 'misfire', policy: 'skip', fireTime: cur, next: null });
  });

  it('startAt and endAt bound interval and cron fire times, both inclusive', () => {
    expect(firstFireTime(bounded, T('2024-01-01T00:00:00Z'))).toBe(T('2024-01-01T00:00:06Z'));
    expect(nextAfter(bounded, T('2024-01-01T00:00:07.5Z'))).toBe(T('2024-01-01T00:00:08Z'));
    expect(nextAfter(bounded, T('2024-01-01T00:00:08Z'))).toBe(T('2024-01-01T00:00:09Z'));
    expect(nextAfter(bounded, T('2024-01-01T00:00:09Z'))).toBeNull();
    expect(firstFireTime(cronBounded, T('2024-01-01T00:00:00Z'))).toBe(T('2024-01-01T00:00:06Z'));
    expect(nextAfter({ ...cronBounded, startAt: D('2024-01-01T00:00:04Z') }, 0)).toBe(T('2024-01-01T00:00:04Z'));
    expect(nextAfter(cronBounded, T('2024-01-01T00:00:08Z'))).toBeNull();
  });

  it('a misfire never fires past endAt: the latest missed time within the bounds, then nothing', () => {
    const cur = T('2024-01-01T00:00:06Z');
    expect(latestAtOrBefore(bounded, cur, T('2024-01-01T01:00:00Z'))).toBe(T('2024-01-01T00:00:09Z'));
    expect(latestAtOrBefore(cronBounded, cur, T('2024-01-01T01:00:00Z'))).toBe(T('2024-01-01T00:00:08Z'));
    expect(decide({ ...bounded, misfire: 'fire-once', misfireThresholdMs: 1000 }, cur, T('2024-01-01T01:00:00Z'))).toMatchObject({
      action: 'misfire', fireTime: T('2024-01-01T00:00:09Z'), next: null,
    });
  });

  it('validates times with an offset, and keeps them as Dates', () => {
    expect(validateSchedule({ name: 'o', job: 'noop', at: '2020-01-01T10:00:00+02:00' }, jobs)).toMatchObject({
      cron: null, everyMs: null, at: D('2020-01-01T08:00:00Z'), startAt: null, endAt: null,
    });
    const later = new Date(Date.now() + 3600_000);
    expect(validateSchedule({ name: 'b', job: 'noop', everyMs: 1000, startAt: '2020-01-01T00:00:00Z', endAt: later }, jobs)).toMatchObject({
      at: null, startAt: D('2020-01-01T00:00:00Z'), endAt: later,
    });
  });

  it.each([
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00' }, 'schedule x: at must name its offset (Z or +HH:MM), got "2027-01-15T10:00:00": a local time is ambiguous across machines and zones'],
    [{ name: 'x', job: 'noop', at: '2027-01-15' }, /schedule x: at must name its offset/],
    [{ name: 'x', job: 'noop', at: 'tomorrow' }, /schedule x: at must be an ISO-8601 date-time with an offset or Z, such as .*, got "tomorrow"$/],
    [{ name: 'x', job: 'noop', at: '2027-02-30T10:00:00Z' }, /schedule x: at must be .*\(there is no such day\)$/],
    [{ name: 'x', job: 'noop', at: new Date(NaN) }, 'schedule x: at is an invalid Date'],
    [{ name: 'x', job: 'noop', at: 5 as never }, /schedule x: at must be .* or a Date, got 5$/],
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00Z', everyMs: 1000 }, 'schedule x: give one of cron, everyMs and at, not everyMs and at'],
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00Z', cron: '* * * * * ?' }, 'schedule x: give one of cron, everyMs and at, not cron and at'],
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00Z', startAt: '2027-01-15T10:00:00Z' }, /schedule x: startAt does not apply to a one-shot trigger \(at\)/],
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00Z', endAt: '2027-01-15T10:00:00Z' }, /schedule x: endAt does not apply to a one-shot trigger/],
    [{ name: 'x', job: 'noop', at: '2027-01-15T10:00:00Z', tz: 'UTC' }, /schedule x: tz does not apply to a one-shot trigger/],
    [{ name: 'x', job: 'noop', everyMs: 1000, startAt: '2099-01-02T00:00:00Z', endAt: '2099-01-01T00:00:00Z' },
      'schedule x: endAt 2099-01-01T00:00:00.000Z must be after startAt 2099-01-02T00:00:00.000Z'],
    [{ name: 'x', job: 'noop', everyMs: 1000, startAt: '2099-01-01T00:00:00Z', endAt: '2099-01-01T00:00:00Z' }, /endAt .* must be after startAt/],
    [{ name: 'x', job: 'noop', cron: '* * * * * ?', endAt: '2020-01-01T00:00:00Z' }, 'schedule x: endAt 2020-01-01T00:00:00.000Z leaves no fire time after now'],
    [{ name: 'x', job: 'noop', everyMs: 1000, startAt: '2027-01-15 10:00' }, /schedule x: startAt must name its offset/],
    [{ name: 'x', job: 'noop', cron: '0 0 0 1 1 ? 2090', startAt: '2091-01-01T00:00:00Z' }, 'schedule x: startAt 2091-01-01T00:00:00.000Z leaves no fire time after now'],
    [{ name: 'x', job: 'noop', cron: '0 0 * * * ?', startAt: '2091-01-01T00:01:00Z', endAt: '2091-01-01T00:59:00Z' },
      'schedule x: startAt 2091-01-01T00:01:00.000Z and endAt 2091-01-01T00:59:00.000Z leave no fire time after now'],
  ])('refuses %j naming the field', (spec, message) => {
    let err: unknown;
    try {
      validateSchedule(spec, jobs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    if (typeof message === 'string') expect((err as Error).message).toBe(message);
    else expect((err as Error).message).toMatch(message);
  });

  it('a declared trigger past its endAt is kept (it never fires again), as a cron that never fires again is', () => {
    expect(validateSchedules([{ name: 'old', job: 'noop', everyMs: 1000, endAt: '2020-01-01T00:00:00Z' }], jobs)).toMatchObject([{ endAt: D('2020-01-01T00:00:00Z') }]);
  });
});
