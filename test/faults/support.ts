/** Helpers of the fault suite: sessions found and terminated by the application_name a test gave its URL. */
import pg from 'pg';
import { PG_BASE } from '../support/backends.ts';
import { pgBackend } from '../cluster/helpers.ts';

export const FAULTS_CONFIG = 'test/faults/fixtures/nightshift.config.ts';

const backend = pgBackend();
export const faultsBackend = backend;

/** Terminates this test's sessions whose application_name matches `like`; returns how many. */
export async function terminate(appLike: string, extra = ''): Promise<number> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    const r = await c.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid() ${extra}`,
      [appLike],
    );
    return r.rows.filter((x: { ok: boolean }) => x.ok).length;
  } finally {
    await c.end();
  }
}

/** How many sessions are named `app`. */
export async function sessions(app: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    return Number((await c.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1`, [app])).rows[0].n);
  } finally {
    await c.end();
  }
}

/** A fresh repository URL whose sessions are named `app`, `app-heartbeat`, `app-listen`, `app-cursor`. */
export function namedUrl(label: string): { url: string; app: string } {
  const app = `nsf_${label}_${process.pid}_${Date.now().toString(36)}`;
  return { url: `${backend.freshUrl(label)}&application_name=${app}`, app };
}

