import type { FastifyInstance } from 'fastify';
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
        "A server started without a config (no job definitions) lists instead the jobs the cluster's live nodes registered, " +
        'each with `launchable: false` and those nodes, so that their history can be found; it cannot launch them.',
      tags: ['jobs'],
      response: { 200: { type: 'array', items: ref('Job') }, ...errors(401, 503) },
    },
  }, async () => {
    if (!withoutDefinitions(ns)) return [...ns.jobs.values()].map(jobDetailJson);
    return [...(await liveNodeJobs(ns.db))].map(([name, nodes]) => nodeJobJson(name, nodes));
  });

  app.get<{ Params: { job: string } }>('/api/jobs/:job', {
    schema: {
      summary: 'One job with its parameter schema and steps',
      description: 'Without a config, a job a live node registered, with `launchable: false` (see GET /api/jobs).',
      tags: ['jobs'],
      params: { type: 'object', properties: { job: { type: 'string', title: 'job name' } }, required: ['job'] },
      response: { 200: ref('Job'), ...errors(401, 404, 503) },
    },
  }, async (req) => {
    const name = req.params.job;
    const job = ns.jobs.get(name);
    if (job) return jobDetailJson(job);
    if (!withoutDefinitions(ns)) throw notFound(`unknown job ${JSON.stringify(name)}`);
    const nodes = (await liveNodeJobs(ns.db)).get(name);
    if (!nodes) throw notFound(`unknown job ${JSON.stringify(name)}: this server has no config, and no live node runs it`);
    return nodeJobJson(name, nodes);
  });
}
