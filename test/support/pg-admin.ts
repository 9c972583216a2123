import pg from 'pg';
import { PG_BASE } from './backends.ts';

/** Runs `fn` on a connection of its own as the suite's PostgreSQL superuser, then closes it. */
export async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
