/**
 * A node row whose registered jobs are not a JSON list of names (written by hand, or by a tool
 * other than Nightshift) reads as a node with no jobs: listing the cluster does not fail.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createNightshift } from '../../src/operator.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { SQL } from '../../src/repository/sql.ts';
import { liveNodeJobs, recentNodes } from '../../src/repository/nodes.ts';
import { backends } from '../support/backends.ts';

describe.each(backends())('node rows ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a node whose jobs are not a JSON list of names lists with none', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('noderows'), jobs: [], logger: silentLogger });
    try {
      const insert = (name: string, jobs: string) =>
        ns.db.query(SQL.insertNode, [name, 'default', 'host', 1, 'node', jobs, 4, 1000, 10_000, 60_000]);
      await insert('good', '["a","b"]');
      await insert('cut', '["a",');
      await insert('object', '{"a":1}');
      await insert('mixed', '["a",2,null]');
      const listed = Object.fromEntries((await ns.nodes()).map((n) => [n.name, n.jobs]));
      expect(listed).toEqual({ good: ['a', 'b'], cut: [], object: [], mixed: ['a'] });
      expect(Object.fromEntries((await recentNodes(ns.db, 60_000)).map((n) => [n.name, n.jobs]))).toEqual(listed);
      expect([...(await liveNodeJobs(ns.db))]).toEqual([['a', ['good', 'mixed']], ['b', ['good']]]);
    } finally {
      await ns.close();
    }
  });
});
