/**
 * The example jobs: the first thing to read when writing your own.
 *
 * Run one in a clone of the repository with
 * `npx nightshift run count items=5000 --config examples/nightshift.config.ts`; the package ships
 * this file compiled, so in an application that installed it the same job runs with
 * `npx nightshift run count items=5000 --config node_modules/nightshift/dist/examples/nightshift.config.js`.
 * Their tables live in the job repository's own database, so each chunk's rows commit in the
 * same transaction as the step's checkpoint: after any crash every item is written once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { csvReader, defineJob, ensureTable, ItemParseError, p, rangeReader, sqlWriter, type Database, type ItemStreamWriter } from 'nightshift';

/** One tasklet step that does nothing. */
export const noop = defineJob({
  name: 'noop',
  description: 'Does nothing: one tasklet step. A first job to try the console and the CLI with.',
  steps: (s) => [s.tasklet({ name: 'noop', tasklet: () => undefined })],
});

/** Reads the numbers 1..items and writes a row per number into count_items. */
export const count = defineJob({
  name: 'count',
  description: 'Writes the numbers 1..items into count_items, in chunks; failAt fails once on purpose, to try a restart.',
  params: {
    items: p.int({ default: 1000, validate: (n) => (n < 0 ? 'must be >= 0' : undefined) }),
    chunk: p.int({ default: 100, validate: (n) => (n < 1 ? 'must be >= 1' : undefined) }),
    tag: p.string({ default: 'default' }),
    delayMs: p.int({ default: 0, identifying: false }),
    failAt: p.int({ default: 0, identifying: false }),
  },
  steps: (s) => [
    s.chunk<number>({
      name: 'count',
      chunkSize: ({ params }) => params.chunk,
      reader: ({ params }) => rangeReader(1, params.items),
      processor: (item, { params, executionNumber }) => {
        if (params.failAt > 0 && executionNumber === 1 && item === params.failAt) {
          throw new Error(`failing on purpose at item ${item} (failAt=${params.failAt})`);
        }
        return params.delayMs > 0 ? sleep(params.delayMs, item) : item;
      },
      writer: ({ params, db }) => countItemsWriter(db, params.tag),
    }),
  ],
});

/** The range 1..items split into `grid` partitions; each writes its rows like `count`. */
export const partitionedCount = defineJob({
  name: 'partitioned-count',
  description: 'Like count, split into grid partitions that any node of the cluster may run.',
  params: {
    items: p.int({ default: 10000, validate: (n) => (n < 0 ? 'must be >= 0' : undefined) }),
    grid: p.int({ default: 8, validate: (n) => (n < 1 ? 'must be >= 1' : undefined) }),
    tag: p.string({ default: 'default' }),
    delayMs: p.int({ default: 0, identifying: false }),
  },
  steps: (s) => [
    s.partitioned({
      name: 'count',
      gridSize: ({ params }) => params.grid,
      // Contiguous ranges covering 1..items; any node of the cluster may run each one.
      partitioner: ({ params, gridSize }) =>
        Array.from({ length: gridSize }, (_, i) => ({
          from: Math.floor((params.items * i) / gridSize) + 1,
          to: Math.floor((params.items * (i + 1)) / gridSize),
        })),
      // Its steps see their partition, typed as the partitioner returns it: { from: number; to: number }.
      worker: (w) => w.chunk<number>({
        name: 'count-range',
        chunkSize: 100,
        reader: ({ partition }) => rangeReader(partition.from, partition.to),
        processor: (item, { params }) => (params.delayMs > 0 ? sleep(params.delayMs, item) : item),
        writer: ({ params, db }) => countItemsWriter(db, params.tag),
      }),
    }),
  ],
});

/** Writes (tag, item, execution_id) rows into count_items, in the chunk's transaction. */
function countItemsWriter(db: Database, tag: string): ItemStreamWriter<number> {
  return {
    open: () => ensureTable(db, 'CREATE TABLE IF NOT EXISTS count_items (tag TEXT NOT NULL, item INTEGER NOT NULL, execution_id BIGINT NOT NULL)'),
    ...sqlWriter<number>({
      table: 'count_items',
      columns: ['tag', 'item', 'execution_id'],
      values: (item, chunk) => [tag, item, chunk.jobExecutionId],
    }),
  };
}

/** A CSV row as read, with the line it came from. */
interface Row {
  line: number;
  id: string;
  name: string;
  email: string;
  amount: string;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

const rawOf = (r: Row) => [r.id, r.name, r.email, r.amount].join(',');

/** A row whose id is already in `people` (unique violation on either database). */
const duplicateId = (e: unknown) => ['23505', 'SQLITE_CONSTRAINT_PRIMARYKEY'].includes((e as { code?: string })?.code ?? '');

/** A bad row, named by its file and line like the CSV reader's own errors. */
const badRow = (input: string, row: Row, problem: string) => new ItemParseError(`${input}, line ${row.line}: ${problem}`, input, row.line, rawOf(row));

/** Why a row is rejected, or undefined when it is valid. */
function validate(row: Row): string | undefined {
  if (!INTEGER.test(row.id)) return `id ${JSON.stringify(row.id)} is not an integer`;
  if (!row.email.includes('@')) return `email ${JSON.stringify(row.email)} lacks @`;
  if (!DECIMAL.test(row.amount)) return `amount ${JSON.stringify(row.amount)} is not a decimal number`;
  return undefined;
}

/** Imports people from a CSV file; bad rows are skipped and recorded in people_rejects. */
export const importCsv = defineJob({
  name: 'import-csv',
  description: 'Imports people from a CSV file; bad rows are skipped and recorded in people_rejects.',
  params: {
    input: p.string({ required: true }),
    chunk: p.int({ default: 1000, validate: (n) => (n < 1 ? 'must be >= 1' : undefined) }),
    skipLimit: p.int({ default: 100, validate: (n) => (n < 0 ? 'must be >= 0' : undefined) }),
  },
  steps: (s) => [
    s.tasklet({
      name: 'prepare-tables',
      allowStartIfComplete: true,
      transactional: false,
      tasklet: async ({ db }) => {
        await ensureTable(db, `CREATE TABLE IF NOT EXISTS people (
          id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, amount NUMERIC NOT NULL)`);
        await ensureTable(db, `CREATE TABLE IF NOT EXISTS people_rejects (
          execution_id BIGINT NOT NULL, line INTEGER, reason TEXT NOT NULL, raw TEXT)`);
      },
    }),
    s.chunk<Row>({
      name: 'import',
      chunkSize: ({ params }) => params.chunk,
      // On PostgreSQL, parse the next chunk while the database loads this one.
      readAhead: true,
      reader: ({ params }) =>
        csvReader<Row>({
          path: params.input,
          expectHeader: ['id', 'name', 'email', 'amount'],
          map: (r, line) => ({ line, id: r.id, name: r.name, email: r.email, amount: r.amount }),
        }),
      // Valid rows pass through as read (both databases convert the id text to an integer).
      processor: (row, { params }) => {
        const problem = validate(row);
        if (problem) throw badRow(params.input, row, problem);
        return row;
      },
      // COPY on PostgreSQL (multi-row INSERT on SQLite); a chunk with a duplicate id is retried
      // row by row, and the duplicate is skipped and recorded like any other bad row.
      writer: ({ params }) => {
        const people = sqlWriter<Row>({
          table: 'people',
          columns: ['id', 'name', 'email', 'amount'],
          values: (p) => [p.id, p.name, p.email, p.amount],
          copy: true,
        });
        return {
          async write(rows, chunk) {
            try {
              await people.write(rows, chunk);
            } catch (error) {
              if (rows.length === 1 && duplicateId(error)) throw badRow(params.input, rows[0], `id ${rows[0].id} is already imported`);
              throw error;
            }
          },
        };
      },
      // Bad rows (unparseable, invalid or a duplicate id) are skipped, up to skipLimit of them.
      skip: { on: [ItemParseError, duplicateId], limit: ({ params }) => params.skipLimit },
      chunkListeners: [
        {
          // Runs inside the chunk's transaction: a reject is recorded exactly once.
          onSkip: async ({ error, item }, chunk) => {
            const e = error instanceof ItemParseError ? error : undefined;
            const row = item; // the Row read or written; a read skip has none
            const reason = e ? e.message.replace(/^.*?, line \d+: /, '') : error instanceof Error ? error.message : String(error);
            await chunk.tx.execute('INSERT INTO people_rejects (execution_id, line, reason, raw) VALUES ($1, $2, $3, $4)', [
              chunk.jobExecutionId, e?.line ?? row?.line ?? null, reason, e?.raw ?? (row ? rawOf(row) : null),
            ]);
          },
        },
      ],
    }),
  ],
  // What an execution's details show besides its counters (GET /api/executions/ID): the rows it
  // rejected, and why.
  summary: async ({ execution, db }) => {
    const [{ n }] = await db.query<{ n: number | string }>('SELECT count(*) AS n FROM people_rejects WHERE execution_id = $1', [execution.id]);
    const first = await db.query<{ line: number | null; reason: string }>(
      'SELECT line, reason FROM people_rejects WHERE execution_id = $1 ORDER BY line LIMIT 10',
      [execution.id],
    );
    return { rejected: Number(n), firstRejects: first.map((r) => ({ line: r.line === null ? null : Number(r.line), reason: r.reason })) };
  },
});

export default [noop, count, importCsv, partitionedCount];
