/**
 * One LISTEN connection per process and database: subscribers share it, each hears only its own
 * channels, one leaving does not deafen the others, the last one leaving closes it, and it comes
 * back (telling every subscriber to catch up) after the server terminates it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { listenOn } from '../../src/repository/listen.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { waitFor } from '../support/backends.ts';
import { faultsBackend, namedUrl, sessions, terminate } from './support.ts';

const backend = faultsBackend;
afterAll(() => backend.cleanup());

describe('the shared LISTEN connection (postgres)', () => {
  it('serves every subscriber on one session, survives a terminated backend, closes with the last subscriber', async () => {
    const { url, app } = namedUrl('listenshared');
    const db = await openDatabase(url);
    try {
      const heard: string[] = [];
      let connects = 0;
      const a = listenOn(db, ['ns_t_a'], { onNotify: (c, p) => heard.push(`a:${c}:${p}`), onConnect: () => connects++ }, silentLogger);
      const b = listenOn(db, ['ns_t_b', 'ns_t_a'], { onNotify: (c, p) => heard.push(`b:${c}:${p}`), onConnect: () => connects++ }, silentLogger);
      await waitFor(() => connects >= 2, 10_000, 'both subscribers connected');
      expect(await sessions(`${app}-listen`)).toBe(1);

      await db.query(`SELECT pg_notify('ns_t_a', '1'), pg_notify('ns_t_b', '2')`);
      await waitFor(() => heard.length >= 3, 10_000, 'the notifications');
      expect(heard.sort()).toEqual(['a:ns_t_a:1', 'b:ns_t_a:1', 'b:ns_t_b:2']);

      const before = connects;
      expect(await terminate(`${app}-listen`)).toBe(1);
      await waitFor(() => connects >= before + 2, 15_000, 'both told of the reconnect');
      heard.length = 0;
      await a.close();
      await db.query(`SELECT pg_notify('ns_t_a', '3')`);
      await waitFor(() => heard.length >= 1, 10_000, 'b still hears');
      expect(heard).toEqual(['b:ns_t_a:3']);
      expect(await sessions(`${app}-listen`)).toBe(1);

      await b.close();
      await waitFor(async () => (await sessions(`${app}-listen`)) === 0, 10_000, 'the LISTEN session closed');
    } finally {
      await db.close();
    }
  });
});
