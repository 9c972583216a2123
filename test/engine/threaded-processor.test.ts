import { afterAll, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { rangeReader } from '../../src/items/range-reader.ts';
import { ThreadedProcessError, threadedProcessor } from '../../src/engine/threaded-processor.ts';
import { backends } from '../support/backends.ts';

type Out = { n: number; sq: number; thread: number };
const work = new URL('../fixtures/engine/thread-work.ts', import.meta.url);

function job(name: string, processor: 'threads' | 'inline', exportName = 'square') {
  const written: Out[] = [];
  const def = defineJob({
    name,
    steps: (s) => [
      s.chunk<number, Out>({
        name: 'squares',
        chunkSize: 25,
        reader: () => rangeReader(1, 100),
        ...(processor === 'threads'
          ? { processInThreads: threadedProcessor(work, { exportName, threads: 2 }) }
          : { processor: (n: number) => ({ n, sq: n * n, thread: 0 }) }),
        writer: () => (items) => void written.push(...items),
        skip: { limit: 20, on: [(e) => e instanceof ThreadedProcessError && e.originalName === 'RangeError'] },
      }),
    ],
  });
  return { def, written };
}

describe.each(backends())('threaded processors on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('give the same results as an in-process processor, computed on worker threads', async () => {
    const threads = job('threads', 'threads');
    const inline = job('inline', 'inline');
    const ns = await createNightshift({ db: backend.freshUrl('threads'), jobs: [threads.def, inline.def], logger: silentLogger });
    const a = await ns.run('threads');
    const b = await ns.run('inline');
    await ns.close();
    expect(a.status).toBe('COMPLETED');
    expect(b.status).toBe('COMPLETED');
    expect(threads.written.map(({ n, sq }) => [n, sq])).toEqual(inline.written.map(({ n, sq }) => [n, sq]));
    expect(new Set(threads.written.map((o) => o.thread)).has(0)).toBe(false);
    expect(new Set(threads.written.map((o) => o.thread)).size).toBe(2);
    expect(a.steps[0]).toMatchObject({ readCount: 100, writeCount: 100, commitCount: 5 });
  });

  it('apply the skip policy to errors thrown in a thread, and filter undefined results', async () => {
    const { def, written } = job('failing', 'threads', 'squareOrFail');
    const ns = await createNightshift({ db: backend.freshUrl('threads-skip'), jobs: [def], logger: silentLogger });
    const e = await ns.run('failing');
    await ns.close();
    expect(e.status).toBe('COMPLETED');
    expect(e.steps[0]).toMatchObject({ readCount: 100, processSkipCount: 10, filterCount: 10, writeCount: 80 });
    expect(written.some((o) => o.n % 10 === 7 || o.n % 10 === 9)).toBe(false);
  });
});
