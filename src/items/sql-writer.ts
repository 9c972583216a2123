import type { ChunkContext, ItemStreamWriter } from '../core/items.ts';
import { keepPrepared } from '../repository/prepared.ts';
import { nativePg } from '../repository/driver-client.ts';
import { loadCopyFrom } from '../repository/drivers.ts';
import type { SqlClient } from '../repository/tx.ts';
import { nameSqlError } from './sql-error.ts';

// Both dialects cap bound parameters per statement (SQLite 32766, PostgreSQL 65535).
const MAX_PARAMS = 30_000;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function assertIdent(what: string, name: string): void {
  if (!IDENT.test(name)) throw new Error(`${what} ${JSON.stringify(name)} is not a plain SQL identifier`);
}

/**
 * Inserts rows with multi-row INSERT statements (as many rows per statement as the dialect's
 * parameter limit allows). `suffix` is appended verbatim, e.g. `ON CONFLICT (id) DO NOTHING`.
 */
export async function insertRows(
  client: SqlClient,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  suffix = '',
): Promise<number> {
  return insertEach(client, insertShape(table, columns, suffix), rows.length, (r) => rows[r]);
}

/**
 * A parameter array that one writer fills again for each statement of the same size, once the
 * previous statement has run: its memory stays in the CPU cache from chunk to chunk.
 */
interface ParamBuffer {
  params?: unknown[];
}

/**
 * {@link insertRows} of `count` rows given one by one by `row`. Each row's values go straight
 * into the statement's parameters: nothing holds on to the row, so a short-lived array that
 * `row` builds can be optimised away.
 */
async function insertEach(
  client: SqlClient,
  shape: InsertShape,
  count: number,
  row: (r: number) => readonly unknown[],
  buffer: ParamBuffer = {},
): Promise<number> {
  if (count === 0) return 0;
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / shape.width));
  let changed = 0;
  for (let start = 0; start < count; start += perStatement) {
    const end = Math.min(count, start + perStatement);
    const size = (end - start) * shape.width;
    const params = buffer.params?.length === size ? buffer.params : (buffer.params = new Array<unknown>(size));
    flatten(start, end, shape.width, row, params);
    changed += await client.execute(shape.text(end - start), params);
  }
  return changed;
}

/**
 * Puts the values of rows `start` to `end` into `p`, one flat parameter list. Common widths read
 * each row at constant indexes: V8 can then inline `row` and never build the array it returns,
 * which is most of this loop's cost on a wide insert. Wider rows take the general loop.
 */
function flatten(start: number, end: number, width: number, row: (r: number) => readonly unknown[], p: unknown[]): void {
  let k = 0;
  let v: readonly unknown[];
  switch (width) {
    case 1: for (let r = start; r < end; r++) p[k++] = row(r)[0]; break;
    case 2: for (let r = start; r < end; r++, k += 2) { v = row(r); p[k] = v[0]; p[k + 1] = v[1]; } break;
    case 3: for (let r = start; r < end; r++, k += 3) { v = row(r); p[k] = v[0]; p[k + 1] = v[1]; p[k + 2] = v[2]; } break;
    case 4: for (let r = start; r < end; r++, k += 4) { v = row(r); p[k] = v[0]; p[k + 1] = v[1]; p[k + 2] = v[2]; p[k + 3] = v[3]; } break;
    case 5:
      for (let r = start; r < end; r++, k += 5) { v = row(r); p[k] = v[0]; p[k + 1] = v[1]; p[k + 2] = v[2]; p[k + 3] = v[3]; p[k + 4] = v[4]; }
      break;
    case 6:
      for (let r = start; r < end; r++, k += 6) {
        v = row(r); p[k] = v[0]; p[k + 1] = v[1]; p[k + 2] = v[2]; p[k + 3] = v[3]; p[k + 4] = v[4]; p[k + 5] = v[5];
      }
      break;
    default:
      for (let r = start; r < end; r++) {
        v = row(r);
        for (let c = 0; c < width; c++) p[k++] = v[c];
      }
  }
}

/** The multi-row INSERT texts into one table's columns (with one suffix), by row count. */
interface InsertShape {
  width: number;
  text(rows: number): string;
}

const shapes = new Map<string, InsertShape>();

// The largest INSERT kept prepared: 2000 rows of 3 columns, or 1000 of 6.
const PREPARE_MAX_PARAMS = 6000;

function insertShape(table: string, columns: readonly string[], suffix: string): InsertShape {
  const key = `${table}|${columns.join(',')}|${suffix}`;
  let shape = shapes.get(key);
  if (!shape) {
    if (shapes.size > 100) shapes.clear();
    shapes.set(key, (shape = newInsertShape(table, columns, suffix)));
  }
  return shape;
}

function newInsertShape(table: string, columns: readonly string[], suffix: string): InsertShape {
  // Texts by row count, so a chunk neither rebuilds its statement nor prepares it again.
  const texts = new Map<number, string>();
  return {
    width: columns.length,
    text(rows) {
      let sql = texts.get(rows);
      // A row count seen twice is a full chunk's, and comes again: keep its statement prepared
      // (a last, shorter chunk's is not), unless it is large: a prepared statement holds about
      // 0.4 kB per parameter on each PostgreSQL connection.
      if (sql) return rows * columns.length <= PREPARE_MAX_PARAMS ? keepPrepared(sql) : sql;
      const tuples: string[] = [];
      for (let r = 0, n = 0; r < rows; r++) tuples.push(`(${columns.map(() => `$${++n}`).join(',')})`);
      sql = `INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')} ${suffix}`;
      if (texts.size > 100) texts.clear();
      texts.set(rows, sql);
      return sql;
    },
  };
}

const COPY_SPECIAL = /[\\\t\n\r]/;

/** Quotes one value for PostgreSQL's COPY text format. */
function copyText(v: unknown): string {
  if (typeof v === 'string') return COPY_SPECIAL.test(v) ? copyEscape(v) : v;
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') return String(v);
  const s = v instanceof Date ? v.toISOString() : String(v);
  return COPY_SPECIAL.test(s) ? copyEscape(s) : s;
}

function copyEscape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Rows in PostgreSQL's COPY text format. */
export function copyData(rows: readonly (readonly unknown[])[]): string {
  const lines = new Array<string>(rows.length + 1);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    let line = row.length > 0 ? copyText(row[0]) : '';
    for (let c = 1; c < row.length; c++) line += '\t' + copyText(row[c]);
    lines[r] = line;
  }
  lines[rows.length] = '';
  return lines.join('\n');
}

/** Loads rows with PostgreSQL's COPY ... FROM STDIN through the transaction's own connection. */
export async function copyRows(client: SqlClient, table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<number> {
  const pg = nativePg(client);
  if (!pg) throw new Error('COPY needs PostgreSQL');
  if (rows.length === 0) return 0;
  const data = copyData(rows);
  const stream = pg.query(loadCopyFrom()(`COPY ${table} (${columns.join(',')}) FROM STDIN`));
  // One write, then the end: 'finish' comes once the server has taken the rows (or 'error').
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('finish', resolve);
    stream.end(data);
  });
  return rows.length;
}

/** What {@link sqlWriter} writes: a table, its columns, and each item's values. */
export interface SqlWriterOptions<T> {
  /** The table, in the repository's database (schema-qualified if need be). */
  table: string;
  /** The columns written, in the order `values` gives them. */
  columns: readonly string[];
  /** The column values of one item, in `columns` order. */
  values: (item: T, chunk: ChunkContext) => readonly unknown[];
  /** Appended to each INSERT, e.g. `ON CONFLICT (id) DO NOTHING`. Not used with COPY. */
  onConflict?: string | undefined;
  /** On PostgreSQL, load with COPY instead of INSERT (fastest; no ON CONFLICT). */
  copy?: boolean | undefined;
}

/**
 * Writes each chunk into a table of the repository's database, inside the chunk's
 * transaction: the rows and the step's checkpoint commit together, exactly once.
 */
export function sqlWriter<T>(options: SqlWriterOptions<T>): ItemStreamWriter<T> {
  assertIdent('table', options.table);
  for (const c of options.columns) assertIdent('column', c);
  const shape = insertShape(options.table, options.columns, options.onConflict ?? '');
  // This writer's chunks are written one after another, so one buffer serves them all.
  const buffer: ParamBuffer = {};
  return {
    async write(items, chunk) {
      const copy = options.copy && chunk.tx.dialect === 'postgres';
      try {
        if (copy) {
          const rows = new Array<readonly unknown[]>(items.length);
          for (let i = 0; i < items.length; i++) rows[i] = options.values(items[i], chunk);
          await copyRows(chunk.tx, options.table, options.columns, rows);
        } else {
          await insertEach(chunk.tx, shape, items.length, (i) => options.values(items[i], chunk), buffer);
        }
      } catch (err) {
        // A multi-row statement is too long to show: the table and the database's detail (the
        // duplicate key, the value that broke a constraint) say which rows.
        throw nameSqlError(err, `sqlWriter ${copy ? 'COPY' : 'INSERT'} into ${options.table}`);
      }
    },
  };
}
