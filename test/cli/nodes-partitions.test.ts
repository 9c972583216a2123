/**
 * `nightshift nodes` shows the partitions each node runs: a worker node runs partitions of an
 * execution another node owns, and listed only by executions it looked idle. A real node process
 * on an SQLite repository.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { killAll, startNode } from '../support/node-procs.ts';
import { cliFor } from './run-cli.ts';

const sqlite = backends().find((b) => b.name === 'sqlite')!;

afterAll(async () => {
  await killAll();
  await sqlite.cleanup();
});

interface NodeJson { name: string; running: number[]; runningPartitions: { id: number; executionId: number }[] }

describe('nightshift nodes', () => {
  it('lists the partitions a node runs, by execution, in the table and in JSON', async () => {
    const url = sqlite.freshUrl('nodesparts');
    const cli = cliFor(url);
    const node = startNode(url, 'pw', { args: ['--concurrency', '4', '--heartbeat-ms', '200'] });
    await waitFor(() => /node pw joined/.test(node.output()) || undefined, 30_000, 'the node to join');
    const submitted = await cli.json<{ id: number }>(['submit', 'partitioned-count', 'items=800', 'grid=2', 'delayMs=40']);
    const listed = await waitFor(async () => {
      const nodes = await cli.json<NodeJson[]>(['nodes']);
      const pw = nodes.find((n) => n.name === 'pw');
      return pw && pw.runningPartitions.length === 2 ? pw : undefined;
    }, 30_000, 'the node to run both partitions');
    expect(listed.running).toEqual([submitted.id]);
    expect(listed.runningPartitions.map((p) => p.executionId)).toEqual([submitted.id, submitted.id]);
    const table = await cli.run(['nodes']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^name\s+status\s+last heartbeat\s+host\s+pid\s+concurrency\s+running\s+partitions\s+jobs$/m);
    expect(table.stdout).toMatch(new RegExp(`^pw\\s+alive\\s+.*\\s${submitted.id}\\s+${submitted.id}x2\\s+\\S*partitioned-count`, 'm'));
    const done = await waitFor(async () => {
      const e = await cli.json<{ status: string }>(['execution', String(submitted.id)]);
      return e.status === 'COMPLETED' ? e : undefined;
    }, 60_000, 'the partitioned execution to complete');
    expect(done.status).toBe('COMPLETED');
    const idle = (await cli.json<NodeJson[]>(['nodes'])).find((n) => n.name === 'pw')!;
    expect(idle).toMatchObject({ running: [], runningPartitions: [] });
    expect((await cli.run(['nodes'])).stdout).toMatch(/^pw\s+alive\s+.*\s-\s+-\s+\S*partitioned-count/m);
  }, 120_000);
});
