import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** PostgreSQL for the suite: NIGHTSHIFT_TEST_PG, or the local test database. */
export const PG_BASE = process.env.NIGHTSHIFT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface Backend {
  readonly name: 'sqlite' | 'postgres';
  /** A fresh, empty repository URL for one test (a new SQLite file or a new PostgreSQL schema). */
  freshUrl(label?: string): string;
  /** Drops everything freshUrl created. */
  cleanup(): Promise<void>;
}

let counter = 0;
const unique = (label: string) => `${label.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}_${process.pid}_${Date.now().toString(36)}_${counter++}`;

function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    freshUrl(label = 't') {
      const dir = mkdtempSync(join(tmpdir(), 'nightshift-test-'));
      dirs.push(dir);
      return `sqlite:${join(dir, `${unique(label)}.db`)}`;
    },
    async cleanup() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

function postgresBackend(): Backend {
  const schemas: string[] = [];
  return {
    name: 'postgres',
    freshUrl(label = 't') {
      const schema = `nst_${unique(label)}`;
      schemas.push(schema);
      return `${PG_BASE}${PG_BASE.includes('?') ? '&' : '?'}schema=${schema}`;
    },
    async cleanup() {
      const drop = schemas.splice(0);
      if (!drop.length) return;
      const client = new pg.Client({ connectionString: PG_BASE });
      await client.connect();
      try {
        for (const s of drop) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Both backends: the conformance suites run unchanged against each (`describe.each(backends())`). */
export function backends(): Backend[] {
  return [sqliteBackend(), postgresBackend()];
}

/** Waits until `check` returns a truthy value, polling, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
