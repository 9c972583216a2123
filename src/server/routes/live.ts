import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { errors } from '../schemas.ts';

/** A client that lets this much go unread is too slow for a live view: its stream ends. */
const MAX_BUFFERED = 4 * 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export async function liveRoutes(app: FastifyInstance, { hub }: ApiContext) {
  app.get('/api/events', {
    schema: {
      summary: 'Live changes of executions, nodes and schedules (server-sent events)',
      description:
        'A `text/event-stream`. First `ready` (after the first look at the repository since connecting): read the lists then, ' +
        'and apply the events that follow. `execution`: an execution in the CLI shape with its steps; `node`: a node as in ' +
        'GET /api/nodes; `schedule`: a trigger as in GET /api/schedules; `schedule-removed`: `{ "name" }`; `resync`: too much ' +
        'changed at once, read the lists again; `status`: `{ "repository": "ok" | "unavailable" }`. One repository poll serves ' +
        'every client. A session stream ends when the session does. Authenticated like every API route (a browser sends its ' +
        'session cookie).',
      tags: ['live'],
      produces: ['text/event-stream'],
      response: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401) },
    },
  }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write('retry: 3000\n\n');
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(keepalive);
      clearTimeout(expiry);
      unsubscribe();
      res.end();
    };
    const unsubscribe = hub.subscribe({
      send(event, json, id) {
        if (ended) return;
        if (res.writableLength > MAX_BUFFERED) return end();
        res.write(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`);
      },
      end,
    });
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    const expiresAt = req.principal?.expiresAt?.getTime();
    const expiry = expiresAt === undefined ? undefined : setTimeout(end, Math.max(0, expiresAt - Date.now()));
    req.raw.on('close', end);
    res.on('error', end);
  });
}
