import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { errors, ref } from '../schemas.ts';
import { jobDetailJson } from '../views.ts';

export async function jobRoutes(app: FastifyInstance, { ns }: ApiContext) {
  app.get('/api/jobs', {
    schema: {
      summary: 'The jobs this server knows, with their parameter schemas',
      description: "Each parameter's type, default, whether it is required and whether it identifies the instance: enough to build a launch form.",
      tags: ['jobs'],
      response: { 200: { type: 'array', items: ref('Job') }, ...errors(401) },
    },
  }, async () => [...ns.jobs.values()].map(jobDetailJson));

  app.get<{ Params: { job: string } }>('/api/jobs/:job', {
    schema: {
      summary: 'One job with its parameter schema and steps',
      tags: ['jobs'],
      params: { type: 'object', properties: { job: { type: 'string', title: 'job name' } }, required: ['job'] },
      response: { 200: ref('Job'), ...errors(401, 404) },
    },
  }, async (req) => {
    const job = ns.jobs.get(req.params.job);
    if (!job) throw notFound(`unknown job ${JSON.stringify(req.params.job)}`);
    return jobDetailJson(job);
  });
}
