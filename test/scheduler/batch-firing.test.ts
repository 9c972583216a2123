/**
 * Batched firing, in process, on both backends: many due triggers fire in one transaction, and
 * what one trigger of a batch meets (a refused launch, parameters that no longer fit, a fire time
 * handled already) is recorded for that trigger while the others of the batch still fire once.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { startScheduler, type FireEvent } from '../../src/scheduler/scheduler.ts';
import { count, noop } from '../../examples/nightshift.config.ts';
import { backends } from '../support/backends.ts';
import { dbNow, suiteRepos, waitFor, type Repo } from './helpers.ts';

const HOUR = 3600_000;

describe.each(backends())('batched firing ($name)', (backend) => {
  const open = suiteRepos(backend);

  /** Adds hourly triggers, then makes their next fire time due now (a second ago, by the database's clock). */
  async function dueTriggers(r: Repo, specs: { name: string; job: 'noop' | 'count'; params?: Record<string, unknown> }[]) {
    for (const s of specs) await r.admin.add({ name: s.name, job: s.job, everyMs: HOUR, params: s.params });
    const due = Math.floor(((await dbNow(r.db)) - 1000) / 1000) * 1000;
    await r.db.execute('UPDATE ns_trigger SET next_fire_time = $1', [due]);
    return due;
  }

  async function fireAll(r: Repo, expected: number) {
    const events: FireEvent[] = [];
    const scheduler = await startScheduler({ db: r.db, jobs: [noop, count], logger: silentLogger, fireConcurrency: 1, onFire: (e) => events.push(e) });
    try {
      await waitFor(async () => events.length >= expected, 30_000, `${expected} firings`);
    } finally {
      await scheduler.stop();
    }
    return events;
  }

  it('fires 60 due triggers once each, in one transaction on PostgreSQL', async () => {
    const r = await open('batch60');
    const due = await dueTriggers(r, Array.from({ length: 60 }, (_, i) => ({ name: `t${String(i).padStart(2, '0')}`, job: 'noop' as const, params: { 'run.id': i } })));
    const events = await fireAll(r, 60);
    expect(events.map((e) => e.outcome)).toEqual(Array(60).fill('fired'));
    const runs = await r.db.query<{ n: number | string; instances: number | string }>(
      'SELECT count(*) AS n, count(DISTINCT instance_id) AS instances FROM ns_job_execution');
    expect(Number(runs[0].n)).toBe(60);
    expect(Number(runs[0].instances)).toBe(60);
    const fires = await r.db.query<{ fire_time: number | string }>('SELECT fire_time FROM ns_trigger_fire');
    expect(fires.map((f) => Number(f.fire_time))).toEqual(Array(60).fill(due));
    if (backend.name === 'postgres') {
      // Rows one transaction inserted share its id: at most 2 batches (the loop may wake up once between adds).
      const tx = await r.db.query<{ n: number | string }>('SELECT count(DISTINCT xmin::text) AS n FROM ns_trigger_fire');
      expect(Number(tx[0].n)).toBeLessThanOrEqual(2);
    }
    // Every trigger moved on to its next fire time.
    const next = await r.db.query<{ next_fire_time: number | string; last_execution_id: number | null }>('SELECT next_fire_time, last_execution_id FROM ns_trigger');
    expect(next.every((t) => Number(t.next_fire_time) > due && t.last_execution_id !== null)).toBe(true);
  });

  it('takes a batch ahead of its fire time and makes it visible at the fire time, never before (PostgreSQL)', async () => {
    if (backend.name !== 'postgres') return;
    const r = await open('batchahead');
    for (let i = 0; i < 30; i++) await r.admin.add({ name: `t${String(i).padStart(2, '0')}`, job: 'noop', everyMs: HOUR, params: { 'run.id': i } });
    // All due together, 2.5 to 3.5 s from now by the database's clock; taken up to 2 s ahead.
    const due = Math.floor(((await dbNow(r.db)) + 3500) / 1000) * 1000;
    await r.db.execute('UPDATE ns_trigger SET next_fire_time = $1', [due]);
    const events: FireEvent[] = [];
    // Its lanes look at the triggers many times before the fire time: none of that may fail.
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const scheduler = await startScheduler({ db: r.db, jobs: [noop, count], logger, fireAheadMs: 2000, onFire: (e) => events.push(e) });
    try {
      // Another session looks all along: nothing the triggers launched is visible before its fire time.
      let seenEarly = 0;
      let looks = 0;
      await waitFor(async () => {
        const [v] = await r.db.query<{ now: number | string; n: number | string }>(
          'SELECT ns_now() AS now, count(*) AS n FROM ns_job_execution');
        looks++;
        if (Number(v.now) < due) seenEarly += Number(v.n);
        return events.length >= 30;
      }, 30_000, '30 firings');
      expect(looks).toBeGreaterThan(10);
      expect(seenEarly).toBe(0);
    } finally {
      await scheduler.stop();
    }
    // The executions were written ahead (inside the firing transaction), the fire log at the fire time.
    const runs = await r.db.query<{ create_time: number | string }>('SELECT create_time FROM ns_job_execution');
    expect(runs).toHaveLength(30);
    expect(Math.min(...runs.map((x) => Number(x.create_time)))).toBeLessThan(due);
    const fires = await r.db.query<{ fire_time: number | string; fired_at: number | string }>('SELECT fire_time, fired_at FROM ns_trigger_fire');
    expect(fires.every((f) => Number(f.fire_time) === due && Number(f.fired_at) >= due)).toBe(true);
    expect(events.every((e) => e.outcome === 'fired' && e.lateMs >= 0)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('records a refused launch for its trigger and fires the rest of the batch', async () => {
    const r = await open('batchrefuse');
    // Two triggers with the same job, parameters and fire time make one instance: the second is refused.
    await dueTriggers(r, [
      { name: 'a-twin', job: 'noop' },
      { name: 'b-twin', job: 'noop' },
      { name: 'c-other', job: 'count', params: { items: 1, tag: 'other' } },
      { name: 'd-broken', job: 'count', params: { items: 1 } },
    ]);
    // Parameters that no longer fit the job (changed since the trigger was added).
    await r.db.execute(`UPDATE ns_trigger SET params = $1 WHERE name = 'd-broken'`, [JSON.stringify({ items: 'many' })]);
    const events = await fireAll(r, 4);
    const byName = Object.fromEntries(events.map((e) => [e.trigger, e]));
    expect(byName['a-twin'].outcome).toBe('fired');
    expect(byName['b-twin'].outcome).toBe('refused');
    expect(byName['c-other'].outcome).toBe('fired');
    expect(byName['d-broken'].outcome).toBe('refused');
    const log = await r.db.query<{ trigger_name: string; outcome: string; detail: string | null; execution_id: number | null }>(
      'SELECT trigger_name, outcome, detail, execution_id FROM ns_trigger_fire ORDER BY trigger_name');
    expect(log.map((l) => [l.trigger_name, l.outcome])).toEqual([['a-twin', 'fired'], ['b-twin', 'refused'], ['c-other', 'fired'], ['d-broken', 'refused']]);
    expect(log[3].detail).toMatch(/parameter items/);
    const execs = await r.db.query<{ job_name: string }>('SELECT job_name FROM ns_job_execution ORDER BY job_name');
    expect(execs.map((e) => e.job_name)).toEqual(['count', 'noop']);
  });

  it('skips a fire time that was handled already and fires the others of the batch once', async () => {
    const r = await open('batchdup');
    const due = await dueTriggers(r, Array.from({ length: 5 }, (_, i) => ({ name: `t${i}`, job: 'noop' as const, params: { 'run.id': i } })));
    // t2's due fire time is in the fire log already (as after the database's clock went back).
    await r.db.execute(`INSERT INTO ns_trigger_fire (trigger_name, fire_time, fired_at, node_name, outcome) VALUES ('t2', $1, $1, 'earlier', 'fired')`, [due]);
    const events = await fireAll(r, 4);
    expect(events.map((e) => e.trigger).sort()).toEqual(['t0', 't1', 't3', 't4']);
    const fires = await r.db.query<{ trigger_name: string; node_name: string | null }>('SELECT trigger_name, node_name FROM ns_trigger_fire ORDER BY trigger_name');
    expect(fires.map((f) => f.trigger_name)).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect(fires.find((f) => f.trigger_name === 't2')!.node_name).toBe('earlier');
    const runIds = await r.db.query<{ params: string }>('SELECT params FROM ns_job_execution');
    expect(runIds.map((x) => (JSON.parse(x.params) as { 'run.id': number })['run.id']).sort()).toEqual([0, 1, 3, 4]);
    // t2 moved past the fire time it found handled.
    await waitFor(async () => Number((await r.db.query<{ n: number | string }>(`SELECT next_fire_time AS n FROM ns_trigger WHERE name = 't2'`))[0].n) > due, 10_000, 't2 moved on');
  });
});
