import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy to a database, for tests where the database goes away: `cut()` refuses new
 * connections and breaks the open ones (as a network partition or a stopped server would, for
 * this client only), `restore()` lets them through again on the same port.
 */
export interface TcpProxy {
  readonly port: number;
  /** How many connections it has accepted so far. */
  readonly accepted: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let accepted = 0;
  const listen = () =>
    new Promise<void>((ok, fail) => {
      const s = createServer((client) => {
        accepted++;
        const upstream = createConnection({ host: targetHost, port: targetPort });
        for (const x of [client, upstream]) {
          sockets.add(x);
          x.on('close', () => sockets.delete(x));
          x.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      s.once('error', fail);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port;
        server = s;
        ok();
      });
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const x of sockets) x.destroy();
    if (s) await new Promise<void>((done) => s.close(() => done()));
  };
  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    cut,
    restore: listen,
    close: cut,
  };
}
