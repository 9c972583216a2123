import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { LaunchRefusedError, UsageError, errorMessage, isUserError } from '../core/errors.ts';
import { positiveInt } from '../core/params.ts';
import { BATCH_STATUSES, type BatchStatus } from '../core/status.ts';
import type { Nightshift } from '../operator.ts';
import type { Routing } from '../cluster/routing.ts';
import { executionJson, jobJson, nodeJson } from '../json.ts';
import { scheduleAdmin, scheduleJson } from '../scheduler/triggers.ts';
import { DASHBOARD_HTML } from './dashboard.ts';
import { createMetrics } from './metrics.ts';

/**
 * The REST API over one operator (SPEC section 6), in the CLI's JSON shapes:
 *
 * | route | what |
 * | --- | --- |
 * | `GET /api/jobs` | the jobs this process knows |
 * | `GET /api/executions?job=&status=&limit=&steps=` | executions, newest first (`steps=1`: with their steps) |
 * | `GET /api/executions/:id` | one execution with its steps |
 * | `POST /api/jobs/:job/executions` `{ params?, node?, key? }` | submit to the cluster (202) |
 * | `POST /api/executions/:id/stop`, `.../abandon` | as the CLI's `stop` and `abandon` |
 * | `GET /api/nodes`, `GET /api/schedules` | cluster members; triggers |
 * | `GET /metrics` | Prometheus metrics |
 * | `GET /` | the web dashboard (see dashboard.ts) |
 *
 * Bad input answers 400, an unknown route, job or execution 404, what the state of an execution
 * or instance refuses (a completed instance launched again, a running execution abandoned) 409,
 * each with `{ error }` naming what is wrong. POSTs must be `application/json` (their body may be
 * empty): a web page cannot send that to another origin without asking first, so other sites
 * cannot submit or stop anything through a visitor's browser.
 */
export function createHttpApi(ns: Nightshift): FastifyInstance {
  const app = Fastify({ logger: false });
  const metrics = createMetrics(ns);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(new UsageError(`request body is not valid JSON: ${errorMessage(err)}`), undefined);
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'POST' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return reply.code(415).send({ error: 'POST requests must have content-type application/json' });
    }
  });

  app.setNotFoundHandler((req, reply) => notFound(reply, `no route ${req.method} ${req.url.split('?')[0]}`));
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof LaunchRefusedError || err instanceof StateConflict) return reply.code(409).send({ error: errorMessage(err) });
    if (isUserError(err)) return reply.code(400).send({ error: errorMessage(err) });
    // Fastify's own 4xx (an unsupported media type, a body too large).
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ error: errorMessage(err) });
    ns.log.error({ err }, 'HTTP API request failed');
    return reply.code(500).send({ error: 'internal error; the server log has the details' });
  });

  app.get('/api/jobs', async () => [...ns.jobs.values()].map(jobJson));

  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/api/executions', async (req) => {
    const job = single(req.query, 'job');
    const status = single(req.query, 'status');
    const limit = single(req.query, 'limit');
    const steps = single(req.query, 'steps');
    if (steps !== undefined && !['0', '1', 'true', 'false'].includes(steps)) throw new UsageError(`steps must be 1 or 0 (or true or false), got ${JSON.stringify(steps)}`);
    if (status !== undefined && !(BATCH_STATUSES as string[]).includes(status)) {
      throw new UsageError(`status must be one of ${BATCH_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
    }
    const n = limit === undefined ? 20 : positiveInt('limit', limit);
    if (n > MAX_LIMIT) throw new UsageError(`limit must be at most ${MAX_LIMIT}, got ${n}`);
    const list = await ns.listExecutions({ job, status: status as BatchStatus | undefined, limit: n, steps: steps === '1' || steps === 'true' });
    return list.map(executionJson);
  });

  app.get<{ Params: { id: string } }>('/api/executions/:id', async (req, reply) => {
    const e = await ns.getExecution(positiveInt('execution id', req.params.id));
    return e ? executionJson(e) : notFound(reply, `no execution with id ${req.params.id}`);
  });

  app.post<{ Params: { job: string }; Body: unknown }>('/api/jobs/:job/executions', async (req, reply) => {
    if (!ns.jobs.has(req.params.job)) return notFound(reply, `unknown job ${JSON.stringify(req.params.job)}`);
    const body = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UsageError('the body must be a JSON object: { "params", "node" or "key" }');
    const { params = {}, node, key } = body as { params?: unknown; node?: unknown; key?: unknown };
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new UsageError('params must be an object of parameter values');
    for (const [name, v] of [['node', node], ['key', key]] as const) {
      if (v !== undefined && typeof v !== 'string') throw new UsageError(`${name} must be a string, got ${JSON.stringify(v)}`);
    }
    if (node !== undefined && key !== undefined) throw new UsageError('give either node or key, not both');
    const routing: Routing = node !== undefined ? { node: node as string } : key !== undefined ? { affinityKey: key as string } : 'any';
    const execution = await ns.submit(req.params.job, params as Record<string, unknown>, routing);
    return reply.code(202).send({ ...executionJson(execution), steps: [] });
  });

  for (const action of ['stop', 'abandon'] as const) {
    app.post<{ Params: { id: string } }>(`/api/executions/:id/${action}`, async (req, reply) => {
      const id = positiveInt('execution id', req.params.id);
      if (!(await ns.getExecution(id))) return notFound(reply, `no execution with id ${id}`);
      try {
        return executionJson(await ns[action](id));
      } catch (err) {
        // The execution exists: what the operator refuses is its state (ended, or still running).
        throw err instanceof UsageError ? new StateConflict(errorMessage(err)) : err;
      }
    });
  }

  app.get('/api/nodes', async () => (await ns.nodes()).map((n) => ({ ...nodeJson(n), host: n.host, pid: n.pid, concurrency: n.concurrency })));

  app.get('/api/schedules', async () => (await scheduleAdmin({ db: ns.db, jobs: ns.jobs }).list()).map(scheduleJson));

  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.scrape()));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));

  return app;
}

/** The most executions one list request returns. */
const MAX_LIMIT = 1000;

/** A request the state of an execution refuses (answered 409). */
class StateConflict extends Error {}

function notFound(reply: FastifyReply, error: string) {
  return reply.code(404).send({ error });
}

/** A query parameter given at most once. */
function single(query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new UsageError(`query parameter ${name} is given ${v.length} times; give it once`);
  return v;
}
