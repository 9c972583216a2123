/**
 * `nightshift node --health-port`: a node's probes over HTTP for a load balancer or Kubernetes,
 * from `node.health()` (see NodeHealth): `GET /livez` 200 while the process is up and has not
 * left the cluster, `GET /readyz` 200 while the node takes work (running, its lease current).
 * Both answer the health as JSON, with 503 when they fail. They show no job data and act on
 * nothing, so they need no token; they listen on loopback unless told otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeHealth } from '../cluster/node.ts';

/** A listening probe server: where, and how to stop it. */
export interface NodeProbes {
  /** `http://HOST:PORT`, the port as bound (`--health-port 0` picks a free one). */
  readonly url: string;
  close(): Promise<void>;
}

/** What the probes say before the node has started (it may be waiting for its database). */
const STARTING = { state: 'starting', ready: false } as const;

type ProbeHealth = NodeHealth | typeof STARTING;

const CHECKS: Record<string, (h: ProbeHealth) => boolean> = {
  '/livez': (h) => h.state !== 'stopped',
  '/readyz': (h) => h.ready,
};

/**
 * Serves `/livez` and `/readyz` from `health` on `host`:`port`; while `health` gives undefined
 * (the node is starting) the process is live and not ready.
 */
export async function serveNodeProbes(health: () => NodeHealth | undefined, host: string, port: number): Promise<NodeProbes> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const check = CHECKS[(req.url ?? '').split('?')[0]];
    if (!check) return send(res, 404, { error: 'not found: the probes are /livez and /readyz' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'only GET and HEAD' }, { allow: 'GET, HEAD' });
    const h = health() ?? STARTING;
    send(res, check(h) ? 200 : 503, h, {}, req.method === 'HEAD');
  });
  // A probe is one short request: a slow or stuck client must not hold sockets open.
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((listening, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      listening();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () => new Promise<void>((closed) => {
      server.close(() => closed());
      server.closeAllConnections();
    }),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, head = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(head ? undefined : text);
}
