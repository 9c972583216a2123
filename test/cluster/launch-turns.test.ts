/**
 * Lone launches take turns (issue 17, many nodes): a launch's notification names its execution,
 * and only the node whose turn it is looks for work, so one launch costs one claim however many
 * nodes idle. Before, every idle node woke and claimed, and all but one found nothing: N claims
 * per launch, N² across the cluster. Three in-process nodes on PostgreSQL, each on its own pool
 * whose claim statements are counted.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNode, type ClusterNode } from '../../src/cluster/node.ts';
import { defineJob } from '../../src/core/job.ts';
import { createLogger, silentLogger } from '../../src/core/logger.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { announceLaunch } from '../../src/repository/announce.ts';
import { requestDrain, resumeNode } from '../../src/repository/nodes.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { SQL } from '../../src/repository/sql.ts';
import { noop } from '../../examples/nightshift.config.ts';
import { killAll, pgBackend, startNode as startNodeProcess, waitFor } from './helpers.ts';

const backend = pgBackend();
const nodes: ClusterNode[] = [];
const pools: Database[] = [];
let ns: Nightshift | undefined;

afterEach(async () => {
  await killAll();
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  await Promise.all(pools.splice(0).map((d) => d.close()));
  await ns?.close();
  ns = undefined;
});
afterAll(() => backend.cleanup());

const work = defineJob({ name: 'work', params: { n: p.int() }, steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
const CLAIMS = new Set([SQL.claim('postgres'), SQL.claimStartingStep]);

/** A pool whose claim statements are counted (the node's own queries, unchanged). */
async function countingPool(url: string, counter: { claims: number }): Promise<Database> {
  const db = await openDatabase(url);
  pools.push(db);
  return new Proxy(db, {
    get(target, key) {
      if (key === 'query') {
        return (sql: string, params?: unknown[]) => {
          if (CLAIMS.has(sql)) counter.claims++;
          return target.query(sql, params);
        };
      }
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('lone launches take turns (postgres, 3 in-process nodes)', () => {
  it('each lone launch wakes one node, and they go round the nodes', async () => {
    const url = backend.freshUrl('turns');
    ns = await createNightshift({ db: url, jobs: [work], logger: silentLogger });
    const counter = { claims: 0 };
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    for (const name of ['a', 'b', 'c']) {
      // Polls are left out (an hour apart): what is counted is what the launches' notifications woke.
      nodes.push(await startNode({ db: await countingPool(url, counter), name, jobs: [work], concurrency: 2, logger, scheduler: false, pollMs: 3_600_000 }));
    }
    // Every node has seen all three (the debug line of each names the turns it computes).
    await waitFor(async () => ['a', 'b', 'c'].every((n) => lines.some((l) => l.includes(`"node":"${n}"`) && /"turns":"work: [abc] [abc] [abc]"/.test(l))), 20_000, 'every node sees a, b and c');

    const before = counter.claims;
    const ran: string[] = [];
    for (let i = 0; i < 9; i++) {
      const e = await ns.submit('work', { n: i });
      ran.push((await ns.waitForEnd(e.id, { timeoutMs: 10_000 })).node ?? '?');
    }
    const claims = counter.claims - before;
    // One claim per launch (9 on a quiet machine; a little room for a look that timing adds).
    // Before, each launch woke all three nodes and each claimed: 27 claims for 9 launches, and
    // whichever node looked first ran it (a b b c b b c a a, once).
    expect(claims, `claims for 9 lone launches; ran on ${ran.join(' ')}`).toBeLessThanOrEqual(12);
    expect(['a', 'b', 'c'].map((n) => ran.filter((r) => r === n).length), `ran on ${ran.join(' ')}`).toEqual([3, 3, 3]);

    // A launch routed to a node is only that node's to take: its notification wakes every node
    // (the turn could name another), so it starts at once, not at the next poll (an hour here).
    for (const [i, name] of ['a', 'b', 'c', 'c', 'b', 'a'].entries()) {
      const e = await ns.submit('work', { n: 100 + i }, { node: name });
      expect((await ns.waitForEnd(e.id, { timeoutMs: 10_000 })).node).toBe(name);
    }
  });

  it("a peer's drain and resume change the turns within a few beats, not at the next full look (30 s)", async () => {
    const url = backend.freshUrl('turndrain');
    ns = await createNightshift({ db: url, jobs: [work], logger: silentLogger });
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    for (const name of ['a', 'b', 'c']) {
      // Beats 500 ms apart: a peer is late after two missed beats, which 200 ms made a loaded host's
      // stalls enough for (the turns then flapped); still far under the 30 s of a full look.
      nodes.push(await startNode({ db: url, name, jobs: [work], concurrency: 2, logger, scheduler: false, lease: { heartbeatMs: 500, leaseMs: 5000 } }));
    }
    const turnsSeen = (node: string, turns: string) => lines.some((l) => l.includes(`"node":"${node}"`) && l.includes(`"turns":"work: ${turns}"`));
    await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b c')), 20_000, 'a and b see a, b and c');
    // Only what the nodes log from now on (each logs its turns when they change; "a b" was also
    // what they saw before c joined).
    lines.length = 0;
    const drainedAt = Date.now();
    expect(await requestDrain(ns.db, 'c')).toBe(true);
    // Within a few beats (500 ms here); the full look comes 30 s apart.
    await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b')), 10_000, 'a and b take c out of the turns');
    expect(Date.now() - drainedAt).toBeLessThan(10_000);
    lines.length = 0;
    expect(await resumeNode(ns.db, 'c')).toBe(true);
    await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b c')), 10_000, 'a and b take c back into the turns');
  });

  it('a peer that was late and beats again is back in the turns within a few beats, not at the next full look (30 s)', async () => {
    const url = backend.freshUrl('turnlate');
    ns = await createNightshift({ db: url, jobs: [noop], logger: silentLogger });
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    // Late two beats (1 s) after its last one; dead only after 15 s, which the pause stays well under.
    const lease = { heartbeatMs: 500, leaseMs: 15_000 };
    for (const name of ['a', 'b']) nodes.push(await startNode({ db: url, name, jobs: [noop], concurrency: 2, logger, scheduler: false, lease }));
    const c = startNodeProcess(url, 'c', { args: ['--heartbeat-ms', String(lease.heartbeatMs), '--lease-ms', String(lease.leaseMs), '--no-scheduler'] });
    const turnsSeen = (node: string, turns: string) => lines.some((l) => l.includes(`"node":"${node}"`) && l.includes(`noop: ${turns}`));
    await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b c')), 20_000, 'a and b see a, b and c');
    lines.length = 0;
    c.child.kill('SIGSTOP');
    try {
      await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b"') || turnsSeen(n, 'a b;')), 10_000, 'a and b take the late c out of the turns');
      lines.length = 0;
    } finally {
      c.child.kill('SIGCONT');
    }
    // Before, the late peer came back only at the next full look, up to 30 s later.
    await waitFor(() => ['a', 'b'].every((n) => turnsSeen(n, 'a b c')), 10_000, 'a and b take c back into the turns');
    expect(c.output()).not.toMatch(/declared dead/);
  });

  it('launches announced at once from many pools all start, however their turns fall (two on one node, one on a full node)', async () => {
    const url = backend.freshUrl('turnburst');
    ns = await createNightshift({ db: url, jobs: [work], logger: silentLogger });
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    for (const name of ['a', 'b']) {
      nodes.push(await startNode({ db: url, name, jobs: [work], concurrency: 4, logger, scheduler: false, pollMs: 3_600_000 }));
    }
    await waitFor(async () => ['a', 'b'].every((n) => lines.some((l) => l.includes(`"node":"${n}"`) && /"turns":"work: [ab] [ab]"/.test(l))), 20_000, 'both nodes see a and b');
    // Six submitters on pools of their own (a process each, in effect): their notifications are
    // not coalesced, and consecutive ids give each node several turns at once. Before, a node
    // given two turns in one look took one launch, and the other waited for a poll (an hour).
    const submitters = await Promise.all(Array.from({ length: 6 }, () => openDatabase(url)));
    pools.push(...submitters);
    const apis = await Promise.all(submitters.map((db) => createNightshift({ db, jobs: [work], logger: silentLogger })));
    try {
      for (let round = 0; round < 3; round++) {
        const launched = await Promise.all(apis.map((api, k) => api.submit('work', { n: round * 10 + k })));
        for (const e of launched) expect((await ns.waitForEnd(e.id, { timeoutMs: 10_000 })).status).toBe('COMPLETED');
      }
    } finally {
      await Promise.all(apis.map((api) => api.close()));
    }
  });

  it('announcements that overlap all resolve: a bulk submit\'s one per job beside a lone launch\'s', async () => {
    const db = await openDatabase(backend.freshUrl('announce'));
    pools.push(db);
    // Before, the announcement queued behind the one in flight could find nothing left to send
    // (a caller that came back from the first had sent it) and threw, failing a committed launch.
    for (let round = 0; round < 20; round++) {
      const bulk = (async () => {
        for (const job of ['a', 'b', 'c']) await announceLaunch(db, job);
      })();
      await expect(Promise.all([bulk, announceLaunch(db, 'x', 42), announceLaunch(db, 'y', 43)])).resolves.toHaveLength(3);
    }
  });
});
