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
import { pgBackend } from './helpers.ts';

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
