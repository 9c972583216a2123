/**
 * Claiming submitted launches on PostgreSQL (an in-process node): the claim starts the first
 * step of a job that begins with one, unless a beforeJob listener must run first, and several
 * queued launches are claimed and run with their steps and counters recorded.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNode, type ClusterNode } from '../../src/cluster/node.ts';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { pgBackend, waitFor } from './helpers.ts';

const backend = pgBackend();
let node: ClusterNode | undefined;
let ns: Nightshift | undefined;

afterEach(async () => {
  await node?.shutdown();
  await ns?.close();
  node = ns = undefined;
});
afterAll(() => backend.cleanup());

describe('claiming launches (postgres, in-process node)', () => {
  it('starts the first step in the claim only when no beforeJob listener comes first', async () => {
    const stepsAtBeforeJob: string[][] = [];
    const plain = defineJob({ name: 'plain', params: { n: p.int({ default: 0 }) }, steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
    const watched = defineJob({
      name: 'watched',
      listeners: [{ beforeJob: async (e) => void stepsAtBeforeJob.push((await ns!.explorer.stepsOf(e.id)).map((s) => s.stepName)) }],
      steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })],
    });
    const url = backend.freshUrl('claim');
    ns = await createNightshift({ db: url, jobs: [plain, watched], logger: silentLogger });
    node = await startNode({ db: url, jobs: [plain, watched], concurrency: 4, logger: silentLogger, scheduler: false });

    const submitted = await Promise.all([...Array.from({ length: 10 }, (_, n) => ns!.submit('plain', { n })), ns.submit('watched')]);
    const ended = await Promise.all(submitted.map((e) => ns!.waitForEnd(e.id, { timeoutMs: 30_000 })));

    for (const e of ended) {
      expect(e.status).toBe('COMPLETED');
      expect(e.steps.map((s) => [s.stepName, s.status, s.commitCount, s.node])).toEqual([['work', 'COMPLETED', 1, node.name]]);
    }
    expect(stepsAtBeforeJob).toEqual([[]]);
  });

  it('starts the first step in the same transaction as the claim when nothing comes before it', async () => {
    // Each job's only step waits at a gate, so its rows can be read while it runs: the claim's
    // UPDATE of the execution and the INSERT of the first step carry the same transaction id
    // (xmin) exactly when the claim started the step; a beforeJob listener forces two.
    const gates = new Map<string, () => void>();
    const reached = new Set<string>();
    const gated = (job: string) => () => new Promise<void>((resolve) => {
      reached.add(job);
      gates.set(job, resolve);
    });
    const plain = defineJob({ name: 'plain', steps: (s) => [s.tasklet({ name: 'work', tasklet: gated('plain') })] });
    const watched = defineJob({
      name: 'watched',
      listeners: [{ beforeJob: () => undefined }],
      steps: (s) => [s.tasklet({ name: 'work', tasklet: gated('watched') })],
    });
    const url = backend.freshUrl('claimtx');
    ns = await createNightshift({ db: url, jobs: [plain, watched], logger: silentLogger });
    node = await startNode({ db: url, jobs: [plain, watched], concurrency: 4, logger: silentLogger, scheduler: false });
    const submitted = await Promise.all([ns.submit('plain'), ns.submit('watched')]);
    await waitFor(() => reached.size === 2, 20_000, 'both steps running');

    const xmins = async (id: number) => {
      const [row] = await ns!.db.query<{ e: string; s: string; steps: number | string }>(
        `SELECT e.xmin::text AS e, s.xmin::text AS s, (SELECT count(*) FROM ns_step_execution x WHERE x.job_execution_id = e.id) AS steps
         FROM ns_job_execution e JOIN ns_step_execution s ON s.job_execution_id = e.id WHERE e.id = $1`,
        [id],
      );
      return { ...row, steps: Number(row.steps) };
    };
    const [p1, w1] = [await xmins(submitted[0].id), await xmins(submitted[1].id)];
    for (const g of gates.values()) g();
    const ended = await Promise.all(submitted.map((e) => ns!.waitForEnd(e.id, { timeoutMs: 30_000 })));

    expect(ended.map((e) => e.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(p1.steps).toBe(1);
    expect(p1.s, 'plain: the first step was inserted by the claim\'s transaction').toBe(p1.e);
    expect(w1.steps).toBe(1);
    expect(w1.s, 'watched: its beforeJob ran between the claim and the first step').not.toBe(w1.e);
  });

  it('fails a queued launch whose stored parameters no longer fit the job, instead of leaving it STARTED', async () => {
    // Submitted while `n` was a string; the node's definition (deployed since) wants an int.
    const before = defineJob({ name: 'changed', params: { n: p.string({ default: 'x' }) }, steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
    const after = defineJob({ name: 'changed', params: { n: p.int({ default: 0 }) }, steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
    const url = backend.freshUrl('changed');
    ns = await createNightshift({ db: url, jobs: [before], logger: silentLogger });
    const queued = await ns.submit('changed', { n: 'abc' });
    node = await startNode({ db: url, jobs: [after], concurrency: 1, logger: silentLogger, scheduler: false });

    const ended = await ns.waitForEnd(queued.id, { timeoutMs: 30_000 });
    expect(ended.status).toBe('FAILED');
    expect(ended.exitStatus.description).toMatch(/\bn\b/);
    // The step the claim may have started ended with the job, not left STARTED.
    expect(ended.steps.every((s) => s.status === 'FAILED')).toBe(true);
  });
});
