/**
 * The peer systems (graphile-worker 0.18, pg-boss 12) need Node 22, so their side of a benchmark
 * runs in processes of bench/peers under its Node 22: the workers (graphile-worker.mjs,
 * pg-boss-worker.mjs) and a client (client.mjs) that sets up a schema and enqueues on request.
 */
import { nextMessage, startPeerScript, type Proc } from './proc.ts';
import { PG } from './util.ts';

export type PeerSystem = 'graphile' | 'pgboss';

/** A bench/peers/client.mjs process, set up (migrated schema, queue created) and ready. */
export interface PeerClient {
  readonly proc: Proc;
  /** Enqueues no-op jobs `from`..`from + count - 1` with the bulk call, `batch` per call; resolves with the ms it took. */
  bulk(from: number, count: number, batch: number): Promise<number>;
  /** Enqueues no-op jobs `from`..`from + count - 1` one call each from `producers` concurrent callers; resolves with the ms it took. */
  singles(from: number, count: number, producers: number): Promise<number>;
  /** Enqueues job `i` marked for a latency sample; resolves with the epoch ms just before the enqueue call. */
  sample(i: number): Promise<number>;
  close(): Promise<void>;
}

/** Starts bench/peers/client.mjs for `system` on `schema`, with the options its setup takes (see client.mjs). */
export async function startPeerClient(system: PeerSystem, schema: string, options: Record<string, unknown> = {}): Promise<PeerClient> {
  const proc = startPeerScript('client.mjs', [system, PG, schema, JSON.stringify(options)]);
  await nextMessage<{ ready?: boolean }>(proc, (m) => m.ready === true, 60_000);
  let ids = 0;
  const call = async <T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<T> => {
    const id = ++ids;
    const reply = nextMessage<{ id?: number; result?: T; error?: string }>(proc, (m) => m.id === id, timeoutMs);
    proc.child.send({ id, cmd, ...args });
    const m = await reply;
    if (m.error !== undefined) throw new Error(`${system} client: ${cmd} failed: ${m.error}`);
    return m.result as T;
  };
  return {
    proc,
    bulk: async (from, count, batch) => (await call<{ ms: number }>('bulk', { from, count, batch })).ms,
    singles: async (from, count, producers) => (await call<{ ms: number }>('singles', { from, count, producers })).ms,
    sample: async (i) => (await call<{ t0: number }>('sample', { i }, 10_000)).t0,
    async close() {
      await call('close', {}, 30_000).catch(() => undefined);
      await proc.stop();
    },
  };
}

/** Starts a peer worker script of bench/peers with `args` and waits for its ready message. */
export async function startPeerWorker<T extends { ready?: boolean }>(file: string, args: readonly string[]): Promise<{ proc: Proc; ready: T }> {
  const proc = startPeerScript(file, [PG, ...args]);
  try {
    return { proc, ready: await nextMessage<T>(proc, (m) => m.ready === true, 60_000) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
