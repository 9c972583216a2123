import type { FastifyInstance } from 'fastify';
import { isConnectionError } from '../../repository/connection-errors.ts';
import { liveNodeJobs } from '../../repository/nodes.ts';
import type { ApiContext } from '../context.ts';
import { withoutDefinitions } from '../definitions.ts';
import { notFound } from '../errors.ts';
import { errors, ref } from '../schemas.ts';
import { jobDetailJson, nodeJobJson } from '../views.ts';

export async function jobRoutes(app: FastifyInstance, { ns }: ApiContext) {
  app.get('/api/jobs', {
    schema: {
      summary: 'The jobs this server knows, with their parameter schemas',
      description:
        "Each parameter's type, default, whether it is required and whether it identifies the instance: enough to build a launch form. " +
        "After the jobs of its config come the jobs the cluster's live nodes registered that its config lacks (all of them, for a " +
        'server started without a config), each with `launchable: false` and those nodes, so that their history can be found; ' +
        'this server cannot launch them.',
      tags: ['jobs'],
      response: { 200: { type: 'array', items: ref('Job') }, ...errors(401, 503) },
    },
  }, async () => {
    const defined = [...ns.jobs.values()].map(jobDetailJson);
    // With a config, an unreachable repository still leaves its jobs to list (the console's
    // Jobs page and launch forms); only the live nodes' other jobs are unknown meanwhile.
    const live = await liveNodeJobs(ns.db).catch((err: unknown) => {
      if (withoutDefinitions(ns) || !isConnectionError(err)) throw err;
      return new Map<string, string[]>();
    });
    const elsewhere = [...live].filter(([name]) => !ns.jobs.has(name)).map(([name, nodes]) => nodeJobJson(name, nodes));
    return [...defined, ...elsewhere];
  });

  app.get<{ Params: { job: string } }>('/api/jobs/:job', {
    schema: {
      summary: 'One job with its parameter schema and steps',
      description: "A job that this server's config lacks (or a server without a config) but a live node registered, with `launchable: false` (see GET /api/jobs).",
      tags: ['jobs'],
      params: { type: 'object', properties: { job: { type: 'string', title: 'job name' } }, required: ['job'] },
      response: { 200: ref('Job'), ...errors(401, 404, 503) },
    },
  }, async (req) => {
    const name = req.params.job;
    const job = ns.jobs.get(name);
    if (job) return jobDetailJson(job);
    const nodes = (await liveNodeJobs(ns.db)).get(name);
    if (nodes) return nodeJobJson(name, nodes);
    throw notFound(`unknown job ${JSON.stringify(name)}` + (withoutDefinitions(ns) ? ': this server has no config, and no live node runs it' : ''));
  });
}
