/**
 * Concurrent processing inside one step (issue 14): a chunk step whose processor waits on I/O
 * (a timer of `delayMs` per item, like an HTTP call or a lookup), run with `processConcurrency`
 * 1 (the default: the sequential path), 8 and 32. Each run writes every item once, in the
 * items' order, as rows into the embedded SQLite database; the time is the step's recorded
 * duration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';
import { defineJob } from '../src/core/job.ts';
import { silentLogger } from '../src/core/logger.ts';
import { p } from '../src/core/params.ts';
import { rangeReader } from '../src/items/range-reader.ts';
import { sqlWriter } from '../src/items/sql-writer.ts';
import { createNightshift } from '../src/operator.ts';
import { note, secs, table } from './lib/util.ts';

export interface ConcurrencyBenchOptions {
  items: number;
  chunk: number;
  delayMs: number;
}

const LEVELS = [1, 8, 32] as const;

/** One job per setting: the processor awaits `delayMs`, then returns the item enriched. */
function enrichJob(concurrency: number) {
  return defineJob({
    name: `enrich-${concurrency}`,
    params: { items: p.int({ required: true }), chunk: p.int({ required: true }), delayMs: p.int({ required: true }) },
    steps: (s) => [
      s.tasklet({ name: 'table', tasklet: ({ tx }) => tx.exec('CREATE TABLE IF NOT EXISTS enriched (setting TEXT NOT NULL, item INTEGER NOT NULL, seq INTEGER NOT NULL)') }),
      s.chunk<number, { item: number; seq: number }>({
        name: 'enrich',
        chunkSize: ({ params }) => params.chunk,
        reader: ({ params }) => rangeReader(1, params.items),
        processor: async (item, { params }) => {
          await wait(params.delayMs);
          return { item, seq: item };
        },
        processConcurrency: concurrency,
        writer: () => sqlWriter({ table: 'enriched', columns: ['setting', 'item', 'seq'], values: (r) => [String(concurrency), r.item, r.seq] }),
      }),
    ],
  });
}

export async function benchConcurrency(o: ConcurrencyBenchOptions): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-bench-concurrency-'));
  const jobs = LEVELS.map(enrichJob);
  const ns = await createNightshift({ db: `sqlite:${join(dir, 'bench.db')}`, jobs, logger: silentLogger });
  const ms = new Map<number, number>();
  try {
    for (const level of LEVELS) {
      const e = await ns.run(`enrich-${level}`, { items: o.items, chunk: o.chunk, delayMs: o.delayMs });
      const step = e.steps.find((s) => s.stepName === 'enrich');
      if (e.status !== 'COMPLETED' || !step) throw new Error(`enrich-${level} ended ${e.status}: ${e.exitStatus.description}`);
      // Every item once, in the items' order (rowid follows the insert order).
      const rows = await ns.db.query<{ item: number }>('SELECT item FROM enriched WHERE setting = $1 ORDER BY rowid', [String(level)]);
      if (rows.length !== o.items || rows.some((r, i) => Number(r.item) !== i + 1)) throw new Error(`enrich-${level}: rows out of order or missing`);
      const took = step.endTime!.getTime() - step.startTime!.getTime();
      ms.set(level, took);
      note(`concurrency: ${level} ${secs(took)}`);
    }
  } finally {
    await ns.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = ms.get(1)!;
  // With c items in flight, a chunk takes ceil(chunk / c) rounds of the delay.
  const ideal = (c: number) => o.chunk / Math.ceil(o.chunk / c);
  return [
    `## Concurrent processing in one step: a processor awaiting ${o.delayMs} ms per item (${o.items.toLocaleString('en')} items, chunk ${o.chunk}, SQLite)`,
    '',
    ...table(['processConcurrency', 'step', 'items/s', 'speed-up vs 1', 'bound (rounds of the delay per chunk)'],
      LEVELS.map((level) => {
        const t = ms.get(level)!;
        return [
          level === 1 ? '1 (the default: one item after another)' : String(level),
          secs(t),
          Math.round((o.items / t) * 1000).toLocaleString('en'),
          level === 1 ? '1.00x' : `**${(base / t).toFixed(2)}x**`,
          `${ideal(level).toFixed(1)}x`,
        ];
      })),
    '',
    `The processor awaits a ${o.delayMs} ms timer per item, standing in for an HTTP call or a lookup; items go to a table in chunks of ${o.chunk}, ` +
      'each chunk in one transaction with its checkpoint, and every run wrote each item once in the items\' order. ' +
      `The time is the step's recorded duration. The bound is what the delay alone allows: each chunk takes ceil(${o.chunk} / concurrency) rounds of it ` +
      '(Node\'s timers add about 1 ms to each round), and the writes, commits and reads add the rest.',
  ];
}
