import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { LaunchRefusedError, UsageError, errorMessage, isUserError } from '../core/errors.ts';
import { positiveInt } from '../core/params.ts';
import { BATCH_STATUSES, type BatchStatus } from '../core/status.ts';
import type { Nightshift } from '../operator.ts';
import type { Routing } from '../cluster/routing.ts';
import { executionJson, jobJson, nodeJson } from '../cli/output.ts';
import { scheduleAdmin, scheduleJson } from '../scheduler/triggers.ts';
import { DASHBOARD_HTML } from './dashboard.ts';
import { createMetrics } from './metrics.ts';

/**
 * The REST API over one operator (SPEC section 6), in the CLI's JSON shapes:
 *
 * | route | what |
 * | --- | --- |
 * | `GET /api/jobs` | the jobs this process knows |
 * | `GET /api/executions?job=&status=&limit=` | executions, newest first |
 * | `GET /api/executions/:id` | one execution with its steps |
 * | `POST /api/jobs/:job/executions` `{ params?, node?, key? }` | submit to the cluster (202) |
 * | `POST /api/executions/:id/stop`, `.../abandon` | as the CLI's `stop` and `abandon` |
 * | `GET /api/nodes`, `GET /api/schedules` | cluster members; triggers |
 * | `GET /metrics` | Prometheus metrics |
 * | `GET /` | the web dashboard (see dashboard.ts) |
 *
 * Bad input answers 400, an unknown job or execution 404, and a launch its instance refuses
 * (completed, or running elsewhere) 409, each with `{ error }` naming what is wrong.
 */
export function createHttpApi(ns: Nightshift): FastifyInstance {
  const app = Fastify({ logger: false });
  const metrics = createMetrics(ns);

  app.setErrorHandler((err, _req, reply) => {
    // A launch refused by the instance's state (completed, running elsewhere) is a conflict.
    if (err instanceof LaunchRefusedError) return reply.code(409).send({ error: errorMessage(err) });
    if (isUserError(err)) return reply.code(400).send({ error: errorMessage(err) });
    // Fastify's own 4xx (a malformed JSON body, an unsupported media type).
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ error: errorMessage(err) });
    ns.log.error({ err }, 'HTTP API request failed');
    return reply.code(500).send({ error: errorMessage(err) });
  });

  app.get('/api/jobs', async () => [...ns.jobs.values()].map(jobJson));

  app.get<{ Querystring: { job?: string; status?: string; limit?: string } }>('/api/executions', async (req) => {
    const { job, status, limit } = req.query;
    if (status !== undefined && !(BATCH_STATUSES as string[]).includes(status)) {
      throw new UsageError(`status must be one of ${BATCH_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
    }
    const list = await ns.listExecutions({ job, status: status as BatchStatus | undefined, limit: limit === undefined ? 20 : positiveInt('limit', limit) });
    return list.map(executionJson);
  });

  app.get<{ Params: { id: string } }>('/api/executions/:id', async (req, reply) => {
    const e = await ns.getExecution(positiveInt('execution id', req.params.id));
    return e ? executionJson(e) : notFound(reply, `no execution with id ${req.params.id}`);
  });

  app.post<{ Params: { job: string }; Body: { params?: Record<string, unknown>; node?: string; key?: string } | undefined }>(
    '/api/jobs/:job/executions',
    async (req, reply) => {
      if (!ns.jobs.has(req.params.job)) return notFound(reply, `unknown job ${JSON.stringify(req.params.job)}`);
      const { params = {}, node, key } = req.body ?? {};
      if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new UsageError('params must be an object of parameter values');
      if (node !== undefined && key !== undefined) throw new UsageError('give either node or key, not both');
      const routing: Routing = node !== undefined ? { node: String(node) } : key !== undefined ? { affinityKey: String(key) } : 'any';
      const execution = await ns.submit(req.params.job, params, routing);
      return reply.code(202).send({ ...executionJson(execution), steps: [] });
    },
  );

  for (const action of ['stop', 'abandon'] as const) {
    app.post<{ Params: { id: string } }>(`/api/executions/:id/${action}`, async (req, reply) => {
      const id = positiveInt('execution id', req.params.id);
      if (!(await ns.getExecution(id))) return notFound(reply, `no execution with id ${id}`);
      return executionJson(await ns[action](id));
    });
  }

  app.get('/api/nodes', async () => (await ns.nodes()).map((n) => ({ ...nodeJson(n), host: n.host, pid: n.pid, concurrency: n.concurrency })));

  app.get('/api/schedules', async () => (await scheduleAdmin({ db: ns.db, jobs: ns.jobs }).list()).map(scheduleJson));

  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));

  return app;
}

function notFound(reply: FastifyReply, error: string) {
  return reply.code(404).send({ error });
}
