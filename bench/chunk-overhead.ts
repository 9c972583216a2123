/**
 * Chunk overhead (SPEC section 9): the `count` example job's step (in-memory reader,
 * transactional SQL writer, chunk 1000) against a hand-written loop doing the same multi-row
 * inserts in the same transactions on the native driver, on SQLite and on PostgreSQL.
 */
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { count } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';

const PG = process.env.NIGHTSHIFT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
// Both sides write the same rows: the same tag, the item, execution id 1 (the framework's first).
const TAG = 'bench';
const DDL = 'CREATE TABLE IF NOT EXISTS count_items (tag TEXT NOT NULL, item INTEGER NOT NULL, execution_id BIGINT NOT NULL)';

function multiRowSql(rows: number, placeholder: (i: number) => string): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push(`(${placeholder(r * 3 + 1)},${placeholder(r * 3 + 2)},${placeholder(r * 3 + 3)})`);
  return `INSERT INTO count_items (tag,item,execution_id) VALUES ${tuples.join(',')}`;
}

/**
 * CPU time of this process's main thread so far, in ms (Linux): unlike the wall time, hardly
 * affected by other processes sharing the machine. Undefined where /proc is missing.
 */
function mainThreadCpuMs(): number | undefined {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
  } catch {
    return undefined;
  }
}

/** Main-thread CPU ms used by the most recent measured run (see {@link mainThreadCpuMs}). */
let lastCpuMs: number | undefined;

async function framework(url: string, items: number, chunk: number): Promise<number> {
  const ns = await createNightshift({ db: url, jobs: [count], logger: silentLogger });
  const cpu0 = mainThreadCpuMs();
  const e = await ns.run('count', { items, chunk, tag: TAG });
  lastCpuMs = cpu0 === undefined ? undefined : mainThreadCpuMs()! - cpu0;
  if (e.status !== 'COMPLETED') throw new Error(`count ended ${e.status}: ${e.exitStatus.description}`);
  await ns.close();
  // The step's own duration as recorded by the repository (launch and process start excluded).
  const step = e.steps[0];
  return step.endTime!.getTime() - step.startTime!.getTime();
}

function handSqlite(path: string, items: number, chunk: number): number {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(DDL);
  const full = db.prepare(multiRowSql(chunk, () => '?'));
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  for (let start = 1; start <= items; start += chunk) {
    const n = Math.min(chunk, items - start + 1);
    const params: unknown[] = [];
    for (let i = start; i < start + n; i++) params.push(TAG, i, 1);
    db.exec('BEGIN IMMEDIATE');
    (n === chunk ? full : db.prepare(multiRowSql(n, () => '?'))).run(...params);
    db.exec('COMMIT');
  }
  const ms = performance.now() - t0;
  lastCpuMs = cpu0 === undefined ? undefined : mainThreadCpuMs()! - cpu0;
  db.close();
  return ms;
}

async function handPg(schema: string, items: number, chunk: number): Promise<number> {
  const client = new pg.Client({ connectionString: PG, options: `-c search_path=${schema}` });
  client.on('error', () => undefined); // a dropped connection fails the next query instead
  await client.connect();
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(DDL);
  // A prepared statement for the full chunk, as the framework's writer keeps one.
  const full = { name: 'hand_insert', text: multiRowSql(chunk, (i) => `$${i}`) };
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  for (let start = 1; start <= items; start += chunk) {
    const n = Math.min(chunk, items - start + 1);
    const params: unknown[] = [];
    for (let i = start; i < start + n; i++) params.push(TAG, i, 1);
    await client.query('BEGIN');
    await client.query(n === chunk ? { ...full, values: params } : { text: multiRowSql(n, (i) => `$${i}`), values: params });
    await client.query('COMMIT');
  }
  const ms = performance.now() - t0;
  lastCpuMs = cpu0 === undefined ? undefined : mainThreadCpuMs()! - cpu0;
  await client.end();
  return ms;
}

export interface Row {
  backend: string;
  items: number;
  handMs: number;
  frameworkMs: number;
  ratio: number;
  /** The median of each round's own ratio (hand loop and framework run back to back). */
  pairedRatio: number;
  /** Median main-thread CPU ms of each side (the framework's includes launching the run). */
  handCpuMs?: number;
  frameworkCpuMs?: number;
}

export type Backend = 'sqlite' | 'postgres';

/** One round's two contenders on one backend: fresh databases for both, removed by `end`. */
interface Round {
  /** Runs before each side. */
  before(): Promise<void>;
  /** The hand loop; resolves with its wall time in ms. */
  hand(): Promise<number>;
  frameworkUrl: string;
  end(): Promise<void>;
}

function sqliteRound(items: number, chunk: number): Round {
  const dir = mkdtempSync(join(tmpdir(), 'ns-bench-'));
  return {
    before: async () => undefined,
    hand: async () => handSqlite(join(dir, 'hand.db'), items, chunk),
    frameworkUrl: `sqlite:${join(dir, 'fw.db')}`,
    end: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresRound(schema: string, items: number, chunk: number): Promise<Round> {
  const admin = new pg.Client({ connectionString: PG });
  admin.on('error', () => undefined);
  await admin.connect();
  return {
    // Both sides start from clean shared buffers: otherwise the second one evicts the first
    // one's dirty pages and pays for writing them.
    before: async () => void (await admin.query('CHECKPOINT').catch(() => undefined)),
    hand: () => handPg(`${schema}_hand`, items, chunk),
    frameworkUrl: `${PG}?schema=${schema}_fw`,
    async end() {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema}_hand CASCADE; DROP SCHEMA IF EXISTS ${schema}_fw CASCADE`);
      await admin.end();
    },
  };
}

/** Runs each side `rounds` times alternately and keeps the median. */
export async function benchChunkOverhead(items: number, rounds: number, backends: readonly Backend[] = ['sqlite', 'postgres']): Promise<Row[]> {
  const chunk = 1000;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows: Row[] = [];
  for (const backend of backends) {
    const hand: number[] = [];
    const fw: number[] = [];
    const handCpu: number[] = [];
    const fwCpu: number[] = [];
    const cpuOf = (into: number[]) => void (lastCpuMs !== undefined && into.push(lastCpuMs));
    for (let r = 0; r < rounds; r++) {
      const round = backend === 'sqlite' ? sqliteRound(items, chunk) : await postgresRound(`nsbench_${process.pid}_${r}`, items, chunk);
      const runHand = async () => {
        await round.before();
        hand.push(await round.hand());
        cpuOf(handCpu);
      };
      const runFramework = async () => {
        await round.before();
        fw.push(await framework(round.frameworkUrl, items, chunk));
        cpuOf(fwCpu);
      };
      // Each side runs first in every other round: whatever one run leaves behind (dirty
      // buffers, a WAL to checkpoint, a warmer cache) must not always fall on the same side.
      for (const run of r % 2 === 0 ? [runHand, runFramework] : [runFramework, runHand]) await run();
      await round.end();
    }
    const h = median(hand);
    const f = median(fw);
    const cpu = handCpu.length === rounds && fwCpu.length === rounds ? { handCpuMs: median(handCpu), frameworkCpuMs: median(fwCpu) } : {};
    const pairedRatio = median(fw.map((ms, r) => ms / hand[r]));
    rows.push({ backend, items, handMs: h, frameworkMs: f, ratio: f / h, pairedRatio, ...cpu });
  }
  return rows;
}
