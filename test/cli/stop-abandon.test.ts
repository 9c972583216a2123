/**
 * `nightshift stop` and `abandon` against a `run` in another process, a graceful stop on
 * SIGTERM, and restarts afterwards: every item is written exactly once.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { cliFor, expectExecutionShape, expectOneLineError, query, scalar, type ExecutionJson } from './run-cli.ts';

describe.each(backends())('nightshift stop/abandon on $name', (backend) => {
  afterAll(() => backend.cleanup());

  async function expectItemsOnce(db: string, tag: string, n: number): Promise<void> {
    const [row] = await query<{ total: unknown; distinct_items: unknown; lo: unknown; hi: unknown }>(
      db,
      'SELECT count(*) AS total, count(DISTINCT item) AS distinct_items, min(item) AS lo, max(item) AS hi FROM count_items WHERE tag = $1',
      [tag],
    );
    expect({ total: Number(row.total), distinct: Number(row.distinct_items), lo: Number(row.lo), hi: Number(row.hi) }).toEqual({ total: n, distinct: n, lo: 1, hi: n });
  }

  /** Waits until the newest count execution is STARTED and has committed rows for `tag`; returns its id. */
  async function runningWithCommits(db: string, tag: string): Promise<number> {
    return waitFor(async () => {
      const rows = await query<{ id: unknown; status: string }>(db, "SELECT id, status FROM ns_job_execution WHERE job_name = 'count' ORDER BY id DESC LIMIT 1");
      if (!rows.length || rows[0].status !== 'STARTED') return undefined;
      const n = await scalar(db, 'SELECT count(*) AS n FROM count_items WHERE tag = $1', [tag]);
      return n > 0 ? Number(rows[0].id) : undefined;
    }, 20_000, `a STARTED count execution with committed rows (tag ${tag})`);
  }

  it('stop ends a running execution STOPPED (exit 1); restart completes it, every item once', async () => {
    const db = backend.freshUrl('cli-stop');
    const cli = cliFor(db);
    const items = 3000;
    const run = cli.spawn(['run', 'count', `items=${items}`, 'chunk=50', 'delayMs=2', 'tag=s', '--json']);
    try {
      const id = await runningWithCommits(db, 's');
      const stopped = await cli.json(['stop', String(id)]);
      expectExecutionShape(stopped);
      // It may already have reached its next chunk boundary when stop reads it back.
      expect(stopped.id).toBe(id);
      expect(['STOPPING', 'STOPPED']).toContain(stopped.status);

      const deadline = Date.now() + 15_000;
      const result = await Promise.race([run.exited, waitFor(() => Date.now() > deadline, 16_000).then(() => undefined)]);
      expect(result, 'the run process did not end within 15 s of stop').toBeDefined();
      expect(result!.code, result!.stderr).toBe(1);
      const printed = JSON.parse(result!.stdout) as ExecutionJson;
      expectExecutionShape(printed);
      expect(printed).toMatchObject({ id, status: 'STOPPED' });

      const e = await cli.json(['execution', String(id)]);
      expect(e.status).toBe('STOPPED');
      const written = await scalar(db, "SELECT count(*) AS n FROM count_items WHERE tag = 's'");
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThan(items);
      expect(written % 50).toBe(0); // whole chunks only

      const restarted = await cli.json(['restart', String(id)]);
      expect(restarted).toMatchObject({ status: 'COMPLETED', instanceId: e.instanceId, parameters: { delayMs: 2 } });
      expect(restarted.steps![0].writeCount).toBe(items - written);
      await expectItemsOnce(db, 's', items);
      expectOneLineError(await cli.run(['stop', String(id)]), /not running|STOPPED/);
    } finally {
      run.child.kill('SIGKILL');
      await run.exited;
    }
  });

  it('SIGTERM to a run stops it gracefully at a chunk boundary (exit 1, STOPPED)', async () => {
    const db = backend.freshUrl('cli-sigterm');
    const cli = cliFor(db);
    const run = cli.spawn(['run', 'count', 'items=100000', 'chunk=50', 'delayMs=2', 'tag=t', '--json']);
    try {
      const id = await runningWithCommits(db, 't');
      run.child.kill('SIGTERM');
      const result = await run.exited;
      expect(result.code, result.stderr).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ id, status: 'STOPPED' });
      const written = await scalar(db, "SELECT count(*) AS n FROM count_items WHERE tag = 't'");
      expect(written % 50).toBe(0);
      expect(await cli.json<ExecutionJson[]>(['executions', '--status', 'STOPPED'])).toMatchObject([{ id }]);
    } finally {
      run.child.kill('SIGKILL');
      await run.exited;
    }
  });

  it('abandon refuses an execution that is not the latest of its instance, as restart does', async () => {
    const db = backend.freshUrl('cli-abandon-old');
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-abandon-'));
    const config = join(dir, 'nightshift.config.mjs');
    writeFileSync(config, `import { defineJob } from 'nightshift';
export const flaky = defineJob({ name: 'flaky', steps: (s) => [s.tasklet({ name: 't', tasklet: () => { if (!process.env.FLAKY_OK) throw new Error('down'); } })] });
`);
    const cli = cliFor(db, config);
    const first = await cli.json(['run', 'flaky'], 1);
    const second = await cli.json(['restart', String(first.id)], 1);
    expect([first.status, second.status]).toEqual(['FAILED', 'FAILED']);
    const refused = await cli.run(['abandon', String(first.id)]);
    expectOneLineError(refused, new RegExp(`^nightshift: execution ${first.id} is not the latest of its instance: execution ${second.id} is FAILED$`));
    expect(refused.stdout).toBe('');
    expect((await cli.json(['execution', String(first.id)])).status).toBe('FAILED');
    // The latest can be abandoned, and then the instance does not run again, even once it could complete.
    expect(await cli.json(['abandon', String(second.id)])).toMatchObject({ id: second.id, status: 'ABANDONED' });
    expectOneLineError(await cli.run(['run', 'flaky'], { env: { FLAKY_OK: '1' } }), /abandoned/i);
    expectOneLineError(await cli.run(['restart', String(first.id)], { env: { FLAKY_OK: '1' } }), /not the latest|ABANDONED/);
  });

  it('abandon marks a FAILED execution ABANDONED; its instance cannot run again', async () => {
    const db = backend.freshUrl('cli-abandon');
    const cli = cliFor(db);
    const failed = await cli.json(['run', 'count', 'items=30', 'chunk=10', 'failAt=15', 'tag=a'], 1);
    expect(failed.status).toBe('FAILED');

    const abandoned = await cli.run(['abandon', String(failed.id)]);
    expect(abandoned.code, abandoned.stderr).toBe(0);
    expect(abandoned.stdout).toMatch(new RegExp(`execution ${failed.id} is ABANDONED`));
    const e = await cli.json(['execution', String(failed.id)]);
    expect(e.status).toBe('ABANDONED');
    // --json prints the abandoned execution; abandoning it again is refused.
    const second = await cli.json(['run', 'count', 'items=30', 'chunk=10', 'failAt=15', 'tag=c'], 1);
    expect(await cli.json(['abandon', String(second.id)])).toMatchObject({ id: second.id, status: 'ABANDONED', exitStatus: { code: 'ABANDONED' } });
    const twice = await cli.run(['abandon', String(second.id), '--json']);
    expectOneLineError(twice, /ABANDONED/);
    expect(twice.stdout).toBe('');

    const [rerun, restart, again, unknownAbandon, unknownStop, other] = await Promise.all([
      cli.run(['run', 'count', 'items=30', 'chunk=10', 'tag=a']),
      cli.run(['restart', String(failed.id)]),
      cli.run(['abandon', String(failed.id)]),
      cli.run(['abandon', '4242']),
      cli.run(['stop', '4242']),
      // Other parameters are another instance: it runs.
      cli.run(['run', 'count', 'items=30', 'chunk=10', 'tag=b']),
    ]);
    expectOneLineError(rerun, /abandoned/i);
    expectOneLineError(restart, /ABANDONED|abandoned/);
    expectOneLineError(again, /ABANDONED/);
    expectOneLineError(unknownAbandon, /no execution with id 4242/);
    expectOneLineError(unknownStop, /no execution with id 4242/);
    expect(other.code, other.stderr).toBe(0);
    expect(await scalar(db, "SELECT count(*) AS n FROM count_items WHERE tag = 'a'")).toBe(10);
  });
});
