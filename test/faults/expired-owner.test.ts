/**
 * A `nightshift run` SIGKILLed mid-run, with no node anywhere: the next process that only reads
 * the repository (here `nightshift execution ID`) finds the run's lease expired by the
 * database's clock, and fails the execution naming its owner, without a human edit.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { cliFor, query, type ExecutionJson } from '../cli/run-cli.ts';

describe.each(backends())('an execution whose owner was killed, on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('is failed, naming its owner, by the next CLI query once the lease has expired', async () => {
    const url = backend.freshUrl('expired');
    const cli = cliFor(url);
    const run = cli.spawn(['run', 'count', 'items=100000', 'chunk=10', 'delayMs=2', 'tag=killed']);
    try {
      await waitFor(async () => {
        const rows = await query<{ n: number | string }>(url, 'SELECT count(*) AS n FROM count_items').catch(() => [{ n: 0 }]);
        return Number(rows[0].n) > 0;
      }, 60_000, 'the run to commit its first chunk');
    } finally {
      run.child.kill('SIGKILL');
    }
    await run.exited;
    const [owner] = await query<{ name: string; status: string }>(url, 'SELECT n.name, n.status FROM ns_node n JOIN ns_job_execution e ON e.owner_node_id = n.id');
    expect(owner.status).toBe('alive'); // nobody has noticed yet

    // Only CLI queries from here: the first ones may come before the lease (3.5 s) ran out.
    const failed = await waitFor(async () => {
      const e = await cli.json<ExecutionJson>(['execution', '1']);
      return e.status === 'FAILED' ? e : undefined;
    }, 30_000, 'a CLI query to find the execution FAILED');
    expect(failed.exitStatus.description).toContain(`node ${owner.name} lost`);
    expect(failed.steps?.map((s) => s.status)).toEqual(['FAILED']);
    const after = await query<{ status: string }>(url, 'SELECT status FROM ns_node WHERE name = $1', [owner.name]);
    expect(after.map((n) => n.status)).toEqual(['dead']);
  });
});
