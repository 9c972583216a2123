/**
 * A `nightshift run import-csv` SIGKILLed in the middle of a 200,000-row import, then
 * `nightshift restart`: the dead owner is detected at once (same host, its pid is gone), the
 * killed execution is FAILED naming it, and every row and reject ends up exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { backends, waitFor } from '../support/backends.ts';
import { lostNodePattern } from '../support/failover-description.ts';
import { writePeopleCsv, type BadKind } from './csv-data.ts';
import { cliFor, query } from './run-cli.ts';

const ROWS = 200_000;
const KINDS: BadKind[] = ['id', 'email', 'amount', 'columns', 'utf8'];
const dir = mkdtempSync(join(tmpdir(), 'nightshift-cli-crash-'));
const planned = writePeopleCsv(join(dir, 'people.csv'), ROWS, (i) => (i % 1009 === 0 ? KINDS[(i / 1009) % KINDS.length] : undefined));

describe.each(backends())('nightshift import-csv killed and restarted on $name', (backend) => {
  afterAll(async () => {
    await backend.cleanup();
    if (backend.name === 'postgres') rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL mid-import, then restart: every valid row and every reject exactly once', async () => {
    const plan = await planned;
    const csv = join(dir, 'people.csv');
    const url = backend.freshUrl('cli-crash');
    const cli = cliFor(url);
    const watch = await openDatabase(url);
    const count = async (sql: string) => Number(Object.values((await watch.query(sql))[0])[0]);
    const run = cli.spawn(['run', 'import-csv', `input=${csv}`, 'chunk=500', 'skipLimit=1000', '--json']);
    let atKill: number;
    try {
      // Kill it as soon as a chunk has committed (the table is created by the job's first step).
      atKill = await waitFor(async () => (await count('SELECT count(*) AS n FROM people')) || undefined, 30_000, 'a committed chunk');
      run.child.kill('SIGKILL');
    } finally {
      run.child.kill('SIGKILL');
      await run.exited; // reaped: its pid is really gone
      await watch.close();
    }
    const [killed] = await query<{ id: unknown; status: string }>(url, "SELECT id, status FROM ns_job_execution WHERE job_name = 'import-csv'");
    expect(killed.status, 'the import finished before it could be killed').toBe('STARTED');
    const killedId = Number(killed.id);
    const committed = Number((await query<{ n: unknown }>(url, 'SELECT count(*) AS n FROM people'))[0].n);
    expect(committed).toBeGreaterThanOrEqual(atKill);
    expect(committed).toBeLessThan(plan.valid.size);

    // Restart right away: no waiting for a lease to expire.
    const started = Date.now();
    const restarted = await cli.json(['restart', String(killedId)]);
    expect(restarted.status).toBe('COMPLETED');
    expect(Date.now() - started).toBeLessThan(30_000);
    const step = restarted.steps!.find((s) => s.name === 'import')!;
    expect(step.writeCount).toBe(plan.valid.size - committed);

    const dead = await cli.json(['execution', String(killedId)]);
    expect(dead.status).toBe('FAILED');
    expect(dead.exitStatus.description).toMatch(lostNodePattern(dead.node!));
    expect(dead.exitStatus.description).toContain(String(run.pid));
    expect(dead.exitStatus.description).toContain(dead.node!);

    const [people] = await query<{ total: unknown; ids: unknown; lo: unknown; hi: unknown }>(
      url, 'SELECT count(*) AS total, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi FROM people',
    );
    const validIds = [...plan.valid.keys()];
    expect({ total: Number(people.total), ids: Number(people.ids), lo: Number(people.lo), hi: Number(people.hi) })
      .toEqual({ total: plan.valid.size, ids: plan.valid.size, lo: validIds[0], hi: validIds[validIds.length - 1] });

    const rejects = await query<{ line: unknown; execution_id: unknown }>(url, 'SELECT line, execution_id FROM people_rejects ORDER BY line');
    expect(rejects.map((r) => Number(r.line))).toEqual(plan.bad.map((b) => b.line));
    expect(rejects.every((r) => [killedId, restarted.id].includes(Number(r.execution_id)))).toBe(true);
  });
});
