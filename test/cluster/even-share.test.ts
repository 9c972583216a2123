/** The even share's arithmetic: each queued item to the least-loaded node with a free slot. */
import { describe, expect, it } from 'vitest';
import { claimLimit, evenShare, wakeTurn } from '../../src/cluster/fair-share.ts';
import { decodeLaunchWake, encodeLaunchWake } from '../../src/repository/announce.ts';
import { startNode } from '../../src/cluster/node.ts';

const nodes = (...loads: [number, number][]) => loads.map(([load, concurrency], i) => ({ id: i + 1, load, concurrency }));

describe('evenShare', () => {
  it('spreads 6 items over 3 idle nodes 2/2/2, and around a busy manager too', () => {
    expect([1, 2, 3].map((me) => evenShare(nodes([0, 4], [0, 4], [0, 4]), me, 6))).toEqual([2, 2, 2]);
    expect([1, 2, 3].map((me) => evenShare(nodes([1, 4], [0, 4], [0, 4]), me, 6))).toEqual([2, 2, 2]);
  });

  it('fills the least loaded first, never beyond a node\'s concurrency, and gives the rest to the lowest ids', () => {
    expect([1, 2, 3].map((me) => evenShare(nodes([3, 4], [0, 4], [4, 4]), me, 5))).toEqual([1, 4, 0]);
    expect([1, 2, 3].map((me) => evenShare(nodes([0, 2], [0, 2], [0, 2]), me, 100))).toEqual([2, 2, 2]);
    expect([1, 2, 3].map((me) => evenShare(nodes([0, 4], [0, 4], [0, 4]), me, 7))).toEqual([3, 2, 2]);
  });

  it('a share once claimed leaves the others\' shares as they were', () => {
    // Node 2 claimed its 2 of 6; nodes 1 and 3 computing afterwards still get 2 each of the 4 left.
    expect([1, 3].map((me) => evenShare(nodes([0, 4], [2, 4], [0, 4]), me, 4))).toEqual([2, 2]);
  });

  it('an idle node may always take one item: a lone launch goes to whichever idle node wakes first', () => {
    expect([1, 2, 3].map((me) => claimLimit(nodes([0, 4], [0, 4], [0, 4]), me, 1))).toEqual([1, 1, 1]);
    expect([1, 2, 3].map((me) => claimLimit(nodes([1, 4], [0, 4], [0, 4]), me, 6))).toEqual([2, 2, 2]);
    expect([1, 2, 3].map((me) => claimLimit(nodes([1, 4], [1, 4], [0, 4]), me, 1))).toEqual([0, 0, 1]);
    expect(claimLimit(nodes([0, 4], [0, 4]), 2, 0)).toBe(0);
  });

  it('startNode refuses an unknown spread, naming it, before touching the database', async () => {
    await expect(startNode({ db: 'sqlite:/nonexistent-dir/x.db', jobs: [], spread: 'random' as never })).rejects.toThrow(/spread must be even or first-come, got "random"/);
  });

  it('a lone launch is the turn of one node: ids go round the nodes, and each pass goes to the next', () => {
    expect([7, 8, 9, 10].map((id) => wakeTurn([3, 5, 9], id, 0))).toEqual([5, 9, 3, 5]);
    expect([0, 1, 2, 3].map((hop) => wakeTurn([3, 5, 9], 7, hop))).toEqual([5, 9, 3, 5]);
    expect(wakeTurn([], 7, 0)).toBeUndefined();
  });

  it('a launch notification names its execution and hop; any other payload (an older node\'s) wakes every node', () => {
    const w = { job: 'import-csv', executionId: 42, hop: 2 };
    expect(decodeLaunchWake(encodeLaunchWake(w))).toEqual(w);
    expect(encodeLaunchWake({ job: 'count', hop: 0 })).toBe('count');
    for (const payload of ['count', 'count x 0', 'count 0 0', 'count 5 -1', '', undefined]) {
      expect(decodeLaunchWake(payload).executionId, String(payload)).toBeUndefined();
    }
  });
});
