/**
 * CLI contract (SPEC section 7) and the noop/count example jobs (section 8), through the real
 * `nightshift` command: jobs, run, restart, instance rules, executions and execution.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { cliFor, expectExecutionShape, expectOneLineError, query, scalar, type ExecutionJson } from './run-cli.ts';

describe.each(backends())('nightshift CLI basics on $name', (backend) => {
  afterAll(() => backend.cleanup());

  /** The rows of count_items for `tag`, checked to be exactly 1..n once each. */
  async function expectCountRows(db: string, tag: string, n: number): Promise<{ execution_id: unknown }[]> {
    const rows = await query<{ item: unknown; execution_id: unknown }>(db, 'SELECT item, execution_id FROM count_items WHERE tag = $1 ORDER BY item', [tag]);
    expect(rows.length).toBe(n);
    expect(rows.map((r) => Number(r.item))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    return rows;
  }

  it('jobs --json lists the example jobs with their parameters; run noop --json prints one execution', async () => {
    const db = backend.freshUrl('cli-jobs');
    const cli = cliFor(db);
    const jobs = await cli.json<{ name: string; parameters: Record<string, { type: string; default: unknown; required: boolean; identifying: boolean }> }[]>(['jobs']);
    const byName = new Map(jobs.map((j) => [j.name, j]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['noop', 'count', 'import-csv']));
    expect(byName.get('noop')!.parameters).toEqual({});
    const count = byName.get('count')!.parameters;
    expect(count.items).toMatchObject({ type: 'int', default: 1000, identifying: true });
    expect(count.chunk).toMatchObject({ type: 'int', default: 100, identifying: true });
    expect(count.tag).toMatchObject({ type: 'string', default: 'default', identifying: true });
    expect(count.delayMs).toMatchObject({ type: 'int', default: 0, identifying: false });
    expect(count.failAt).toMatchObject({ type: 'int', default: 0, identifying: false });
    const imp = byName.get('import-csv')!.parameters;
    expect(imp.input).toMatchObject({ type: 'string', required: true });
    expect(imp.chunk).toMatchObject({ type: 'int', default: 1000 });
    expect(imp.skipLimit).toMatchObject({ type: 'int', default: 100 });

    const r = await cli.run(['run', 'noop', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no progress output with --json on a non-terminal
    const e = JSON.parse(r.stdout) as ExecutionJson; // all of stdout is one JSON document
    expect(Array.isArray(e)).toBe(false);
    expectExecutionShape(e);
    expect(e).toMatchObject({ jobName: 'noop', status: 'COMPLETED', exitStatus: { code: 'COMPLETED' }, parameters: {} });
    expect(e.startTime).not.toBeNull();
    expect(e.endTime).not.toBeNull();
    expect(typeof e.node).toBe('string');
    expect(e.steps).toHaveLength(1);
    expect(e.steps![0]).toMatchObject({ name: 'noop', status: 'COMPLETED', exitStatus: { code: 'COMPLETED' } });
  });

  it('run count writes each item once with its execution id', async () => {
    const db = backend.freshUrl('cli-count');
    const cli = cliFor(db);
    const e = await cli.json(['run', 'count', 'items=250', 'chunk=100', 'tag=x']);
    expectExecutionShape(e);
    expect(e).toMatchObject({ jobName: 'count', status: 'COMPLETED', parameters: { items: 250, chunk: 100, tag: 'x', delayMs: 0, failAt: 0 } });
    expect(e.steps).toHaveLength(1);
    expect(e.steps![0]).toMatchObject({ status: 'COMPLETED', readCount: 250, writeCount: 250, commitCount: 3, rollbackCount: 0 });
    const rows = await expectCountRows(db, 'x', 250);
    expect(new Set(rows.map((r) => Number(r.execution_id)))).toEqual(new Set([e.id]));
    expect(await scalar(db, 'SELECT count(*) AS n FROM count_items')).toBe(250);
  });

  it('a failed run restarts to completion; completed instances are refused', async () => {
    const db = backend.freshUrl('cli-restart');
    const cli = cliFor(db);
    const failed = await cli.json(['run', 'count', 'items=50', 'chunk=10', 'failAt=25'], 1);
    expectExecutionShape(failed);
    expect(failed.status).toBe('FAILED');
    expect(failed.exitStatus.code).toBe('FAILED');
    expect(failed.exitStatus.description).toMatch(/25/);
    // Two chunks (1..20) committed before the failure.
    expect(await scalar(db, "SELECT count(*) AS n FROM count_items WHERE tag = 'default'")).toBe(20);

    const restarted = await cli.json(['restart', String(failed.id)]);
    expectExecutionShape(restarted);
    expect(restarted).toMatchObject({ status: 'COMPLETED', instanceId: failed.instanceId, jobName: 'count' });
    expect(restarted.id).not.toBe(failed.id);
    expect(restarted.parameters).toEqual(failed.parameters);
    expect(restarted.steps![0]).toMatchObject({ readCount: 30, writeCount: 30 });
    const rows = await expectCountRows(db, 'default', 50);
    expect(rows.filter((r) => Number(r.execution_id) === failed.id)).toHaveLength(20);
    expect(rows.filter((r) => Number(r.execution_id) === restarted.id)).toHaveLength(30);
    // Each execution's text names the other of its instance: where the restart went on from, and to.
    for (const id of [failed.id, restarted.id]) {
      const shown = await cli.run(['execution', String(id)]);
      expect(shown.code, shown.stderr).toBe(0);
      const mark = (x: number) => (x === id ? ' (this one)' : '');
      expect(shown.stdout).toContain(`  executions of instance ${failed.instanceId}: #${failed.id} FAILED${mark(failed.id)}, #${restarted.id} COMPLETED${mark(restarted.id)}\n`);
    }

    // Listed, the failure names the restart that completed its instance: in JSON, and in the table's status.
    const listed = await cli.json<ExecutionJson[]>(['executions']);
    expect(listed.map((e) => [e.id, e.restartedAs])).toEqual([[restarted.id, null], [failed.id, { id: restarted.id, status: 'COMPLETED' }]]);
    expect((await cli.json(['execution', String(failed.id)])).restartedAs).toEqual({ id: restarted.id, status: 'COMPLETED' });
    const table = await cli.run(['executions']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${failed.id}\\s+count\\s+FAILED → #${restarted.id} COMPLETED\\s+FAILED\\s`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${restarted.id}\\s+count\\s+COMPLETED\\s+COMPLETED\\s`, 'm'));

    // The same identifying parameters again: refused (failAt is non-identifying).
    const [again, againJson, restartCompleted, restartFailed] = await Promise.all([
      cli.run(['run', 'count', 'items=50', 'chunk=10', 'failAt=25']),
      cli.run(['run', 'count', 'items=50', 'chunk=10', '--json']),
      // Restarting the completed execution, or the failed one of a completed instance: refused.
      cli.run(['restart', String(restarted.id)]),
      cli.run(['restart', String(failed.id), '--json']),
    ]);
    expectOneLineError(again, /already completed.*run --next/);
    expect(again.stdout).toBe('');
    expectOneLineError(againJson, /already completed/);
    expect(againJson.stdout).toBe('');
    expectOneLineError(restartCompleted, /COMPLETED|completed/);
    expectOneLineError(restartFailed, /completed|COMPLETED/);
    expect(restartFailed.stdout).toBe('');
    expect(await scalar(db, 'SELECT count(*) AS n FROM count_items')).toBe(50);
  });

  it('executions (newest first, --job, --status, --limit) and execution ID', async () => {
    const db = backend.freshUrl('cli-list');
    const cli = cliFor(db);
    const a = await cli.json(['run', 'noop']);
    const b = await cli.json(['run', 'count', 'items=20', 'chunk=5', 'failAt=7'], 1);
    const c = await cli.json(['run', 'count', 'items=10', 'chunk=5', 'tag=c']);
    expect([a.id, b.id, c.id]).toEqual([...new Set([a.id, b.id, c.id])].sort((x, y) => x - y));

    const [all, counts, failed, limited] = await Promise.all([
      cli.json<ExecutionJson[]>(['executions']),
      cli.json<ExecutionJson[]>(['executions', '--job', 'count']),
      cli.json<ExecutionJson[]>(['executions', '--status', 'FAILED']),
      cli.json<ExecutionJson[]>(['executions', '--limit', '2']),
    ]);
    expect(all.map((e) => e.id)).toEqual([c.id, b.id, a.id]);
    for (const e of all) expectExecutionShape(e, false);
    // None was restarted: each names no later execution (null, not absent).
    expect(all.map((e) => e.restartedAs)).toEqual([null, null, null]);
    expect(all[0]).toMatchObject({ jobName: 'count', status: 'COMPLETED', parameters: { items: 10, chunk: 5, tag: 'c' } });
    expect(counts.map((e) => e.id)).toEqual([c.id, b.id]);
    expect(failed.map((e) => e.id)).toEqual([b.id]);
    expect(failed[0].exitStatus.description).toMatch(/7/);
    expect(limited.map((e) => e.id)).toEqual([c.id, b.id]);
    const combined = await cli.json<ExecutionJson[]>(['executions', '--job', 'count', '--status', 'COMPLETED', '--limit', '1']);
    expect(combined.map((e) => e.id)).toEqual([c.id]);
    expect(await cli.json<ExecutionJson[]>(['executions', '--job', 'import-csv'])).toEqual([]);
    // Several statuses at once, and the node that ran them (each `run` is its own run-HOST-PID).
    expect((await cli.json<ExecutionJson[]>(['executions', '--status', 'failed,COMPLETED'])).map((e) => e.id)).toEqual([c.id, b.id, a.id]);
    expect((await cli.json<ExecutionJson[]>(['executions', '--status', 'FAILED,STOPPED'])).map((e) => e.id)).toEqual([b.id]);
    expect(b.node).toMatch(/^run-/);
    expect((await cli.json<ExecutionJson[]>(['executions', '--node', b.node!])).map((e) => e.id)).toEqual([b.id]);
    expect(await cli.json<ExecutionJson[]>(['executions', '--node', 'nosuch'])).toEqual([]);

    const one = await cli.json(['execution', String(b.id)]);
    expectExecutionShape(one);
    expect(one).toMatchObject({ id: b.id, jobName: 'count', status: 'FAILED', instanceId: b.instanceId });
    expect(one.steps).toHaveLength(1);
    expect(one.steps![0]).toMatchObject({ name: 'count', status: 'FAILED', writeCount: 5, commitCount: 1 });

    // Text forms work too (not JSON).
    const [text, detail, unknownJson, unknown] = await Promise.all([
      cli.run(['executions']),
      cli.run(['execution', String(b.id)]),
      cli.run(['execution', '99999', '--json']),
      cli.run(['execution', '99999']),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${c.id}\\s+count\\s+COMPLETED`, 'm'));
    expect(detail.code).toBe(0);
    expect(detail.stdout).toContain(`execution ${b.id}`);
    expect(detail.stdout).toContain('FAILED');
    expectOneLineError(unknownJson, /no execution with id 99999/);
    expect(unknownJson.stdout).toBe('');
    expectOneLineError(unknown, /no execution with id 99999/);
  });
});
