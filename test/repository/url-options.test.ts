/**
 * A PostgreSQL URL's own `?options=` (server settings, as libpq and node-postgres read them) is
 * given with Nightshift's settings, not instead of them. Before, the driver took the URL's
 * options over the ones Nightshift set, so `?schema=x&options=-c statement_timeout=...` lost the
 * schema's search_path: the repository's tables went into public.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { pgBackend } from '../cluster/helpers.ts';

const backend = pgBackend();
afterAll(() => backend.cleanup());

describe('a PostgreSQL URL with ?options= (server settings)', () => {
  it('keeps its settings and the schema: tables in the schema, statement_timeout as given', async () => {
    const url = `${backend.freshUrl('urlopts')}&options=${encodeURIComponent('-c statement_timeout=4321 -c search_path=public')}`;
    const schema = new URL(url).searchParams.get('schema')!;
    const db = await openDatabase(url);
    try {
      const [row] = await db.query<{ schema: string; timeout: string }>(`SELECT current_schema() AS schema, current_setting('statement_timeout') AS timeout`);
      // The schema's search_path comes after the URL's and wins; the URL's other setting holds.
      expect(row).toEqual({ schema, timeout: '4321ms' });
      const [tables] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'ns_job_execution'`, [schema]);
      expect(Number(tables.n)).toBe(1);
    } finally {
      await db.close();
    }
  });
});
