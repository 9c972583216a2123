/**
 * A job's `firingParams` and `fireTimeIdentifying: false`: Spring Batch's business-date
 * instances on both backends. Each firing's parameters are derived from its fire time in the
 * trigger's zone; the instance is the business date, whether a firing or a launch by hand made
 * it, so a firing for a date that completed is refused and one for a date that failed restarts
 * it; a firingParams that throws refuses its firing and the trigger moves on; adding a trigger
 * refuses one whose derived parameters do not fit the job.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { jobJson } from '../../src/json.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { defineJob, runnableJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { startScheduler, type FireEvent } from '../../src/scheduler/scheduler.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { backends } from '../support/backends.ts';
import { suiteRepos, waitFor, type Repo } from './helpers.ts';

const nightly = defineJob({
  name: 'nightly',
  params: { businessDate: p.date({ required: true }), region: p.string({ default: 'eu' }), fail: p.boolean({ default: false, identifying: false }) },
  firingParams: (firing) => ({ businessDate: firing.day(-1) }),
  fireTimeIdentifying: false,
  steps: (s) => [s.tasklet({ name: 'load', tasklet: ({ params }) => {
    if (params.fail) throw new Error('the load failed on purpose');
  } })],
});

/** No business day on Sundays (UTC): its firings are refused by the job itself. */
const weekdays = defineJob({
  name: 'weekdays',
  params: { businessDate: p.date({ required: true }) },
  firingParams: (firing) => {
    if (firing.fireTime.getUTCDay() === 0) throw new Error('no business day on a Sunday');
    return { businessDate: firing.day(-1) };
  },
  steps: (s) => [s.tasklet({ name: 'load', tasklet: () => undefined })],
});

const jobs = [nightly, weekdays];

/** The calendar date of `t` in `tz`, moved by `days`, worked out here without the code under test. */
function dayIn(t: number, tz: string, days: number): string {
  const local = new Date(new Date(t).toLocaleString('en-US', { timeZone: tz }));
  local.setDate(local.getDate() + days);
  return `${local.getFullYear()}-${String(local.getMonth() + 1).padStart(2, '0')}-${String(local.getDate()).padStart(2, '0')}`;
}

interface Row { id: number; instanceId: number; status: string; params: Record<string, unknown>; ident: Record<string, unknown> }

async function executions(r: Repo, job: string): Promise<Row[]> {
  const rows = await r.db.query<{ id: number; instance_id: number; status: string; params: string; identifying_params: string }>(
    `SELECT e.id, e.instance_id, e.status, e.params, i.identifying_params
     FROM ns_job_execution e JOIN ns_job_instance i ON i.id = e.instance_id WHERE e.job_name = $1 ORDER BY e.id`,
    [job],
  );
  return rows.map((x) => ({
    id: Number(x.id), instanceId: Number(x.instance_id), status: x.status,
    params: JSON.parse(x.params) as Record<string, unknown>, ident: JSON.parse(x.identifying_params) as Record<string, unknown>,
  }));
}

describe('firingParams and fireTimeIdentifying as defineJob takes them', () => {
  const base = { name: 'x', steps: (s: Parameters<Parameters<typeof defineJob>[0]['steps']>[0]) => [s.tasklet({ name: 't', tasklet: () => undefined })] };
  it('refuses a firingParams that is not a function and a fireTimeIdentifying that is not a boolean, naming the job', () => {
    expect(() => defineJob({ ...base, firingParams: { businessDate: 'yesterday' } as never })).toThrow('job x: firingParams must be a function');
    expect(() => defineJob({ ...base, fireTimeIdentifying: 'no' as never })).toThrow('job x: fireTimeIdentifying must be true or false, got "no"');
    expect(defineJob(base).fireTimeIdentifying).toBe(true);
  });
});

describe('a business-date job as the CLI and the HTTP API list it', () => {
  const [sqlite] = backends();
  afterAll(() => sqlite.cleanup());
  it('says fireTime does not identify its instances, and says nothing for a job whose fireTime does', async () => {
    expect(jobJson(runnableJob(nightly))).toMatchObject({ fireTimeIdentifying: false });
    expect(jobJson(runnableJob(weekdays))).not.toHaveProperty('fireTimeIdentifying');
    const ns = await createNightshift({ db: sqlite.freshUrl('listed'), jobs, logger: silentLogger });
    const api = createHttpApi(ns, { tokens: 'none' });
    try {
      expect((await api.inject({ url: '/api/jobs/nightly' })).json()).toMatchObject({ name: 'nightly', fireTimeIdentifying: false });
      expect((await api.inject({ url: '/api/jobs/weekdays' })).json()).not.toHaveProperty('fireTimeIdentifying');
    } finally {
      await api.close();
      await ns.close();
    }
  });
});

describe.each(backends())('business-date firings ($name)', (backend) => {
  const open = suiteRepos(backend);
  const adminOf = (r: Repo) => scheduleAdmin({ db: r.db, jobs });

  it('a trigger may leave out what firingParams sets; each firing gets the day before in the trigger zone, and fireTime does not identify it', async () => {
    const r = await open('bizdate');
    const admin = adminOf(r);
    // Kiritimati is UTC+14 and Pago Pago UTC-11: at most instants their dates differ.
    await admin.add({ name: 'east', job: 'nightly', cron: '0 0 2 * * ?', tz: 'Pacific/Kiritimati' });
    await admin.add({ name: 'west', job: 'nightly', cron: '0 0 2 * * ?', tz: 'Pacific/Pago_Pago', params: { region: 'us' } });
    const east = await admin.fireNow('east');
    const west = await admin.fireNow('west');
    const [e, w] = await executions(r, 'nightly');
    expect([e.id, w.id]).toEqual([east.id, west.id]);
    for (const [x, tz] of [[e, 'Pacific/Kiritimati'], [w, 'Pacific/Pago_Pago']] as const) {
      const fired = Date.parse(x.params.fireTime as string);
      expect(x.params.businessDate, tz).toBe(`${dayIn(fired, tz, -1)}T00:00:00.000Z`);
      expect(Object.keys(x.ident).sort(), tz).toEqual(['businessDate', 'region']);
    }
    expect(w.params.region).toBe('us');
    // A second firing now is the same instance (same business date), which is still queued: refused.
    await expect(admin.fireNow('east')).rejects.toThrow(/job nightly .*businessDate=/);
    expect(await executions(r, 'nightly')).toHaveLength(2);
  });

  it("an undefined a firingParams returns, or a trigger gives, is not given: the trigger's value (or the default) stands", async () => {
    const r = await open('bizundef');
    const keeps = defineJob({
      name: 'keeps',
      params: { businessDate: p.date({ required: true }), region: p.string({ default: 'eu' }) },
      firingParams: (firing) => ({ businessDate: firing.day(-1), region: undefined }),
      steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
    });
    const admin = scheduleAdmin({ db: r.db, jobs: [keeps] });
    await admin.add({ name: 'us', job: 'keeps', everyMs: 60_000, params: { region: 'us', fireTime: undefined } });
    await admin.fireNow('us');
    const [x] = await executions(r, 'keeps');
    expect(x.params.region).toBe('us');
    expect(x.params.fireTime).toEqual(expect.any(String));
  });

  it('the instance is the business date: a firing for a date that completed is refused, for one that failed restarts it', async () => {
    const r = await open('bizinstance');
    const ns = await createNightshift({ db: r.url, jobs, logger: silentLogger });
    try {
      expect((await ns.run('nightly', { businessDate: '2026-02-26', fail: true })).status).toBe('FAILED');
      expect((await ns.run('nightly', { businessDate: '2026-02-27' })).status).toBe('COMPLETED');
    } finally {
      await ns.close();
    }
    const admin = adminOf(r);
    // One-shots already past: each fires at once (a misfire, fire-once) with its own fire time.
    await admin.add({ name: 'for-failed', job: 'nightly', at: '2026-02-27T08:00:00Z' });
    await admin.add({ name: 'for-completed', job: 'nightly', at: '2026-02-28T08:00:00Z' });
    await admin.add({ name: 'for-new', job: 'nightly', at: '2026-03-01T01:30:00+01:00' });
    const events: FireEvent[] = [];
    const scheduler = await startScheduler({ db: r.db, jobs, logger: silentLogger, pollMs: 100, onFire: (e) => events.push(e) });
    try {
      await waitFor(() => events.length >= 3, 15_000, 'the three one-shots handled');
    } finally {
      await scheduler.stop();
    }
    const outcomes = Object.fromEntries(events.map((e) => [e.trigger, e.outcome]));
    expect(outcomes).toEqual({ 'for-failed': 'misfired', 'for-completed': 'refused', 'for-new': 'misfired' });
    // On PostgreSQL a batch inserts new instances before it restarts existing ones: not in fire-time order.
    const [failed, completed, ...fired] = await executions(r, 'nightly');
    const [restarted, fresh] = fired.sort((a, b) => String(a.params.businessDate).localeCompare(String(b.params.businessDate)));
    expect(failed.status).toBe('FAILED');
    expect(completed.status).toBe('COMPLETED');
    expect(restarted).toMatchObject({ instanceId: failed.instanceId, params: { businessDate: '2026-02-26T00:00:00.000Z', fireTime: '2026-02-27T08:00:00.000Z' } });
    // 01:30 at +01:00 is still the last day of February in UTC, the trigger's zone.
    expect(fresh.params).toMatchObject({ businessDate: '2026-02-28T00:00:00.000Z', fireTime: '2026-03-01T00:30:00.000Z' });
    expect(await executions(r, 'nightly')).toHaveLength(4);
    const [refusal] = await admin.history('for-completed');
    expect(refusal).toMatchObject({ outcome: 'refused', executionId: null });
    expect(refusal.detail).toContain(`job nightly already completed for parameters businessDate=2026-02-27T00:00:00.000Z region=eu (execution ${completed.id})`);
    expect((await admin.get('for-completed'))!.nextFireTime).toBeNull();
  });

  it('a firingParams that throws refuses that firing with its reason, and the trigger moves on; a fire now says why', async () => {
    const r = await open('bizthrows');
    const admin = adminOf(r);
    // 2026-03-01 is a Sunday: adding the trigger does not refuse it (other days would fire).
    await admin.add({ name: 'sunday', job: 'weekdays', at: '2026-03-01T06:00:00Z' });
    await admin.add({ name: 'monday', job: 'weekdays', at: '2026-03-02T06:00:00Z' });
    const events: FireEvent[] = [];
    const scheduler = await startScheduler({ db: r.db, jobs, logger: silentLogger, pollMs: 100, onFire: (e) => events.push(e) });
    try {
      await waitFor(() => events.length >= 2, 15_000, 'both one-shots handled');
    } finally {
      await scheduler.stop();
    }
    expect(Object.fromEntries(events.map((e) => [e.trigger, e.outcome]))).toEqual({ sunday: 'refused', monday: 'misfired' });
    const [refusal] = await admin.history('sunday');
    expect(refusal.detail).toBe('job weekdays: firingParams failed: no business day on a Sunday for the firing of schedule sunday at 2026-03-01T06:00:00.000Z');
    expect((await admin.get('sunday'))!.nextFireTime).toBeNull();
    expect((await executions(r, 'weekdays')).map((x) => x.params.businessDate)).toEqual(['2026-03-01T00:00:00.000Z']);
    // A fire now runs it for today, which is refused with the same kind of error when it is a Sunday.
    if (new Date().getUTCDay() === 0) await expect(admin.fireNow('monday')).rejects.toThrow('no business day on a Sunday');
    else expect((await admin.fireNow('monday')).status).toBe('STARTING');
  });

  it('adding a trigger refuses one whose derived parameters do not fit the job, naming the trigger and the parameter', async () => {
    const r = await open('bizbad');
    const wrongDay = defineJob({
      name: 'wrong-day',
      params: { businessDate: p.date({ required: true }) },
      firingParams: (firing) => ({ businessDate: `day ${firing.day(-1)}` }),
      steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
    });
    const forgets = defineJob({
      name: 'forgets',
      params: { businessDate: p.date({ required: true }), region: p.string({ required: true }) },
      firingParams: (firing) => ({ businessDate: firing.day(-1) }),
      steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
    });
    const promises = defineJob({
      name: 'promises',
      params: { businessDate: p.date({ required: true }) },
      firingParams: (async () => ({ businessDate: '2026-01-01' })) as never,
      steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
    });
    const admin = scheduleAdmin({ db: r.db, jobs: [wrongDay, forgets, promises] });
    await expect(admin.add({ name: 'a', job: 'wrong-day', cron: '0 0 2 * * ?' })).rejects.toThrow('schedule a: job wrong-day: parameter businessDate must be an ISO-8601 date, got "day ');
    await expect(admin.add({ name: 'b', job: 'forgets', everyMs: 60_000 })).rejects.toThrow('schedule b: job forgets: missing required parameter region');
    await expect(admin.add({ name: 'c', job: 'promises', everyMs: 60_000 })).rejects.toThrow('schedule c: job promises: firingParams returned a promise');
    await expect(admin.add({ name: 'd', job: 'forgets', everyMs: 60_000, params: { regio: 'eu' } })).rejects.toThrow('schedule d: job forgets: unknown parameter regio');
    expect(await admin.add({ name: 'e', job: 'forgets', everyMs: 60_000, params: { region: 'eu' } })).toMatchObject({ schedule: { params: { region: 'eu' } } });
    expect(await admin.list()).toHaveLength(1);
  });
});
