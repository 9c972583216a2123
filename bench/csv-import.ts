/**
 * CSV import (SPEC section 9, issue 3): the `import-csv` example job loading a people CSV into
 * PostgreSQL, against (a) a hand-written loop with the same parser (the reader's csvSplitter:
 * lines without quotes split directly, quoted records by csv-parse) and the same writer (the
 * job's COPY of each chunk read, one transaction per chunk, rejects recorded in the same
 * transaction), at the job's default chunk of 1000 rows and at 10000, and (b) PostgreSQL's own
 * `COPY people FROM STDIN` of the whole file in one transaction.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type pg from 'pg';
import { importCsv } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { csvSplitter } from '../src/items/csv-reader.ts';
import { copyRows } from '../src/items/sql-writer.ts';
import { wrapPgClient } from '../src/repository/postgres.ts';
import { writePeopleCsv, type PeopleCsv } from './lib/csv.ts';
import { dropSchemas, int, median, note, schemaClient, schemaName, schemaUrl, secs, table } from './lib/util.ts';

/** Chunk sizes measured: the job's default (1000), and a larger one that amortises each transaction. */
const CHUNKS = (process.env.BENCH_CSV_CHUNKS ?? '1000,10000').split(',').map(Number);
/** The job's own table definitions (examples/nightshift.config.ts). */
const PEOPLE = 'CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, amount NUMERIC NOT NULL)';
const REJECTS = 'CREATE TABLE people_rejects (execution_id BIGINT NOT NULL, line INTEGER, reason TEXT NOT NULL, raw TEXT)';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/** The job's validation, on the fields by position. */
function problemOf(r: string[]): string | undefined {
  if (r.length !== 4) return `expected 4 fields, found ${r.length}`;
  if (!INTEGER.test(r[0])) return `id ${JSON.stringify(r[0])} is not an integer`;
  if (!r[2].includes('@')) return `email ${JSON.stringify(r[2])} lacks @`;
  if (!DECIMAL.test(r[3])) return `amount ${JSON.stringify(r[3])} is not a decimal number`;
  return undefined;
}

async function countPeople(client: pg.Client): Promise<number> {
  return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM people')).rows[0].n);
}

/** What a straightforward hand-written import looks like; returns its time in ms. */
async function handLoop(csv: PeopleCsv, schema: string, chunk: number): Promise<number> {
  const client = await schemaClient(schema);
  try {
    await client.query(PEOPLE);
    await client.query(REJECTS);
    const tx = wrapPgClient(client);
    const t0 = performance.now();
    let rows: string[][] = [];
    let rejects: [number, string, string][] = [];
    let read = 0;
    const flush = async () => {
      await client.query('BEGIN');
      if (rows.length) await copyRows(tx, 'people', ['id', 'name', 'email', 'amount'], rows);
      for (const [line, reason, raw] of rejects) {
        await client.query('INSERT INTO people_rejects (execution_id, line, reason, raw) VALUES ($1, $2, $3, $4)', [0, line, reason, raw]);
      }
      await client.query('COMMIT');
      rows = [];
      rejects = [];
    };
    // The reader's parser, fed the file's chunks; each record comes with its line number.
    const splitter = csvSplitter(csv.path)(0, 1);
    let fields: string[][] = [];
    let lines: number[] = [];
    const sink = { add: (record: string[], line: number) => void (fields.push(record), lines.push(line)) };
    let header = true;
    const consume = async () => {
      const records = fields;
      const at = lines;
      fields = [];
      lines = [];
      for (let i = 0; i < records.length; i++) {
        const r = records[i];
        if (header) {
          header = false;
          if (r.join() !== 'id,name,email,amount') throw new Error(`unexpected header ${r.join()}`);
          continue;
        }
        read++;
        const problem = problemOf(r);
        if (problem) rejects.push([at[i], problem, r.join(',')]);
        else rows.push(r);
        if (read % chunk === 0) await flush();
      }
    };
    for await (const chunk of createReadStream(csv.path, { highWaterMark: 64 * 1024 })) {
      splitter.write(chunk as Buffer, sink);
      await consume();
    }
    splitter.end(sink);
    await consume();
    if (rows.length || rejects.length) await flush();
    const ms = performance.now() - t0;
    const loaded = await countPeople(client);
    if (loaded !== csv.rows - csv.bad) throw new Error(`hand loop loaded ${loaded} rows, expected ${csv.rows - csv.bad}`);
    return ms;
  } finally {
    await client.end();
  }
}

/** The import-csv job; returns its import step's duration (startTime to endTime) in ms. */
async function job(csv: PeopleCsv, schema: string, chunk: number): Promise<number> {
  const ns = await createNightshift({ db: schemaUrl(schema), jobs: [importCsv], logger: silentLogger });
  try {
    const e = await ns.run('import-csv', { input: csv.path, chunk, skipLimit: csv.rows });
    if (e.status !== 'COMPLETED') throw new Error(`import-csv ended ${e.status}: ${e.exitStatus.description}`);
    const step = e.steps.find((s) => s.stepName === 'import')!;
    if (step.writeCount !== csv.rows - csv.bad) throw new Error(`import-csv wrote ${step.writeCount} rows, expected ${csv.rows - csv.bad}`);
    return step.endTime!.getTime() - step.startTime!.getTime();
  } finally {
    await ns.close();
  }
}

/** COPY of the whole file (bad rows included: they are well-typed); returns its time in ms. */
async function copy(csv: PeopleCsv, schema: string): Promise<number> {
  const client = await schemaClient(schema);
  try {
    await client.query(PEOPLE);
    const t0 = performance.now();
    await pipeline(createReadStream(csv.path), client.query(copyFrom('COPY people FROM STDIN WITH (FORMAT csv, HEADER true)')));
    const ms = performance.now() - t0;
    const loaded = await countPeople(client);
    if (loaded !== csv.rows) throw new Error(`COPY loaded ${loaded} rows, expected ${csv.rows}`);
    return ms;
  } finally {
    await client.end();
  }
}

/**
 * Runs the contenders `rounds` times in turn on one generated file: for each chunk size the hand
 * loop and the job (a transaction per chunk each), and COPY once; Markdown lines.
 */
export async function benchCsvImport(rows: number, rounds: number): Promise<string[]> {
  const csv = await writePeopleCsv(rows);
  note(`csv: generated ${int(rows)} rows (${int(csv.bad)} bad), ${(csv.bytes / 2 ** 20).toFixed(0)} MiB`);
  const runs: { name: string; run: (csv: PeopleCsv, schema: string) => Promise<number> }[] = [
    ...CHUNKS.flatMap((chunk) => [
      { name: `hand ${chunk}`, run: (c: PeopleCsv, s: string) => handLoop(c, s, chunk) },
      { name: `job ${chunk}`, run: (c: PeopleCsv, s: string) => job(c, s, chunk) },
    ]),
    { name: 'copy', run: copy },
  ];
  const times = new Map(runs.map((r) => [r.name, [] as number[]]));
  // This process's CPU time (user + system) per run: on a busy machine, steadier than the wall time.
  const cpu = new Map(runs.map((r) => [r.name, [] as number[]]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const { name, run } of runs) {
        const schema = schemaName(`csv_${name.replace(' ', '_')}`);
        try {
          const before = process.cpuUsage();
          times.get(name)!.push(await run(csv, schema));
          const used = process.cpuUsage(before);
          cpu.get(name)!.push((used.user + used.system) / 1000);
        } finally {
          await dropSchemas(schema);
        }
        note(`csv: round ${r + 1} ${name} ${secs(times.get(name)!.at(-1)!)} (CPU ${secs(cpu.get(name)!.at(-1)!)})`);
      }
    }
  } finally {
    csv.remove();
  }
  const med = (name: string) => median(times.get(name)!);
  const cp = med('copy');
  const rate = (ms: number) => `${int((rows / ms) * 1000)}/s`;
  const round = (name: string) => times.get(name)!.map((t) => (t / 1000).toFixed(2)).join(', ');
  return [
    `## CSV import into PostgreSQL: import-csv job vs hand loop and COPY (${int(rows)} rows, ${int(csv.bad)} bad, median of ${rounds})`,
    '',
    ...table(['chunk', 'contender', 'time', 'rows/s', 'Nightshift (import step)', 'ratio', 'target'], CHUNKS.flatMap((chunk) => {
      const hand = med(`hand ${chunk}`);
      const fw = med(`job ${chunk}`);
      return [
        [int(chunk), `hand loop: the same parser (csvSplitter) and COPY writer, 1 tx per ${int(chunk)} rows`, secs(hand), rate(hand), secs(fw), `${(fw / hand).toFixed(3)}x`, '<= 1.10x'],
        [int(chunk), '`COPY people FROM STDIN (FORMAT csv)` of the whole file', secs(cp), rate(cp), secs(fw), `${(fw / cp).toFixed(3)}x`, '<= 2x'],
      ];
    })),
    '',
    `Rounds (s): ${runs.map(({ name }) => `${name} ${round(name)}`).join('; ')}.`,
    `CPU time of this Node process per run (all its threads, median, setup included): ${runs.map(({ name }) => `${name} ${secs(median(cpu.get(name)!))}`).join(', ')}; beyond that, the time goes mostly to waiting for PostgreSQL (its work, each transaction's commit, round trips).`,
    `The job (\`chunk\` is its parameter; 1000 is the default) and the hand loop validate rows alike and record rejects in the chunk's transaction; COPY validates nothing, loads in one transaction, and also loads the ${int(csv.bad)} rows whose email lacks '@'. Each contender writes into a fresh schema with the same \`people\` table (primary key on id).`,
  ];
}
