import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UsageError, errorMessage } from '../../core/errors.ts';
import type { JobExecution } from '../../core/model.ts';
import { BATCH_STATUSES, type BatchStatus } from '../../core/status.ts';
import type { Routing } from '../../cluster/routing.ts';
import type { SubmitItem } from '../../engine/bulk-launch.ts';
import { executionJson } from '../../json.ts';
import { SEARCH_WINDOW } from '../../repository/job-repository.ts';
import { type ApiContext, pageHeaders } from '../context.ts';
import { jobsRunElsewhere, notInConfigMessage, refuseIfRunElsewhere, requireDefinition, requireDefinitions } from '../definitions.ts';
import { conflict, describeError, notFound } from '../errors.ts';
import { errors, paramsBody, ref } from '../schemas.ts';
import { queryDate } from '../validation.ts';
import { executionDetailJson } from '../views.ts';

/** The most executions one list request returns. */
export const MAX_LIMIT = 1000;
/** The most launches one batch submission takes. */
export const MAX_BATCH = 10_000;
/** How long a job's summary() may take before the details are answered without it. */
const SUMMARY_TIMEOUT_MS = 2000;

const idParam = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1, title: 'execution id' } },
  required: ['id'],
} as const;

const target = (req: FastifyRequest) => `execution ${(req.params as { id: string }).id}`;

/** What the state of an execution refuses, as 409 rather than 400 (the request itself was fine). */
async function refusedAsConflict<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof UsageError ? conflict(errorMessage(err)) : err;
  }
}

/** The body of a submission: parameters, routing, and whether to launch the job's next instance. */
interface SubmitBody {
  params?: Record<string, unknown>;
  node?: string;
  key?: string;
  next?: boolean;
}

interface ListQuery {
  job?: string;
  status?: string;
  node?: string;
  from?: string;
  to?: string;
  q?: string;
  cursor?: number;
  limit: number;
  steps?: '0' | '1' | 'true' | 'false';
}

export async function executionRoutes(app: FastifyInstance, { ns, log }: ApiContext) {
  app.get<{ Querystring: ListQuery }>('/api/executions', {
    schema: {
      summary: 'Executions, newest first, filtered and paged',
      description:
        'A page of executions in the CLI shape, newest first, each with `restartedAs`: the newest later execution of its ' +
        'instance, or null (a FAILED execution whose restart has COMPLETED since names it). Paging is by cursor and stable while executions are added: ' +
        'when there is a next page, `Link` (rel="next") and `X-Next-Cursor` say how to get it. A parameter-text search (`q`) ' +
        `looks at ${SEARCH_WINDOW} executions per page at most, so a page may be short and still have a next one.`,
      tags: ['executions'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          job: { type: 'string', maxLength: 128, description: 'only this job' },
          status: { type: 'string', maxLength: 200, description: `only these statuses, comma-separated (${BATCH_STATUSES.join(', ')})` },
          node: { type: 'string', maxLength: 200, description: 'only executions run by this node' },
          from: { type: 'string', maxLength: 64, description: "created at or after this time: an ISO-8601 date or date-time (a time without an offset is UTC; send an offset's + as %2B)" },
          to: { type: 'string', maxLength: 64, description: "created before this time: an ISO-8601 date or date-time (a time without an offset is UTC; send an offset's + as %2B)" },
          q: { type: 'string', minLength: 1, maxLength: 200, description: 'text in the parameters (their JSON form), ignoring case' },
          cursor: { type: 'integer', minimum: 1, description: 'X-Next-Cursor of the previous page' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 20 },
          steps: { type: 'string', enum: ['0', '1', 'true', 'false'], description: '1: each execution with its steps' },
        },
      },
      response: {
        200: {
          type: 'array',
          items: ref('Execution'),
          headers: {
            link: { type: 'string', description: 'the next page: <URL>; rel="next"' },
            'x-next-cursor': { type: 'string', description: 'the cursor of the next page' },
          },
        },
        ...errors(400, 401, 503),
      },
    },
  }, async (req, reply) => {
    const q = req.query;
    const statuses = q.status?.split(',').map((s) => s.trim());
    for (const s of statuses ?? []) {
      if (!(BATCH_STATUSES as string[]).includes(s)) throw new UsageError(`status must be one of ${BATCH_STATUSES.join(', ')}, got ${JSON.stringify(s)}`);
    }
    const page = await ns.explorer.pageExecutions({
      job: q.job,
      ...(statuses?.length === 1 ? { status: statuses[0] as BatchStatus } : statuses ? { statuses: statuses as BatchStatus[] } : {}),
      node: q.node,
      from: q.from === undefined ? undefined : queryDate('from', q.from),
      to: q.to === undefined ? undefined : queryDate('to', q.to),
      text: q.q,
      before: q.cursor,
      limit: q.limit,
    });
    let list: typeof page.executions = page.executions;
    if (q.steps === '1' || q.steps === 'true') {
      const steps = await ns.explorer.stepsOfMany(list.map((e) => e.id));
      list = list.map((e) => ({ ...e, steps: steps.get(e.id)! }));
    }
    pageHeaders(reply, req.url, page.nextCursor);
    return list.map(executionJson);
  });

  app.get<{ Querystring: { limit: number } }>('/api/queue', {
    schema: {
      summary: 'The executions waiting for a node, the next to run first',
      description:
        'Queued executions that no node has claimed yet, oldest first: the order nodes claim them in (a node takes the oldest ' +
        'of those it may run: its jobs, and work addressed to no node or to it). Read from the queue alone, however long the history.',
      tags: ['executions'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 20 } },
      },
      response: { 200: { type: 'array', items: ref('Execution') }, ...errors(400, 401, 503) },
    },
  }, async (req) => (await ns.explorer.queuedExecutions(req.query.limit)).map(executionJson));

  app.get<{ Params: { id: number } }>('/api/executions/:id', {
    schema: {
      summary: 'One execution with its steps, partitions, ExecutionContexts and summary',
      tags: ['executions'],
      params: idParam,
      response: { 200: ref('ExecutionDetail'), ...errors(400, 401, 404, 503) },
    },
  }, async (req) => {
    const e = await ns.explorer.getExecutionSummary(req.params.id);
    if (!e) throw notFound(`no execution with id ${req.params.id}`);
    const [tree, summary] = await Promise.all([ns.explorer.stepTree(e.id), summaryOf(e)]);
    return executionDetailJson(e, tree, summary);
  });

  app.get<{ Params: { id: number } }>('/api/instances/:id/executions', {
    schema: {
      summary: 'The executions of one job instance, oldest first',
      description:
        'Every execution of the instance (an execution\'s `instanceId`): its first run, and each restart of it or hand-over ' +
        'after a node died, in the order they were created, so that a restarted execution can be followed from the first.',
      tags: ['executions'],
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1, title: 'job instance id' } }, required: ['id'] },
      response: { 200: { type: 'array', items: ref('Execution') }, ...errors(400, 401, 404, 503) },
    },
  }, async (req) => {
    const executions = await ns.explorer.executionsOfInstance(req.params.id);
    if (!executions.length && !(await ns.explorer.getInstance(req.params.id))) throw notFound(`no job instance with id ${req.params.id}`);
    return executions.sort((a, b) => a.id - b.id).map(executionJson);
  });

  /** What the job's summary() says of an execution; null when it has none or it fails (logged). */
  async function summaryOf(e: JobExecution): Promise<Record<string, unknown> | null> {
    const summary = ns.jobs.get(e.jobName)?.summary;
    if (!summary) return null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`took longer than ${SUMMARY_TIMEOUT_MS} ms`)), SUMMARY_TIMEOUT_MS)));
      return (await Promise.race([Promise.resolve(summary({ execution: e, db: ns.db })), timeout])) ?? null;
    } catch (err) {
      log.warn({ err: describeError(err), execution: e.id, job: e.jobName }, `the summary of job ${e.jobName} failed`);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  app.post<{ Params: { id: number } }>('/api/executions/:id/restart', {
    config: { role: 'operator', audit: { action: 'execution.restart', target } },
    schema: {
      summary: 'Restart a FAILED or STOPPED execution on the cluster',
      description:
        "Queues a new execution of the instance (STARTING until a node takes it), which resumes from the last one's checkpoints, routed as the original was. " +
        'A server without a config cannot (409). Needs the operator role.',
      tags: ['executions'],
      params: idParam,
      response: { 202: ref('Execution'), ...errors(400, 401, 403, 404, 409, 503) },
    },
  }, async (req, reply) => {
    const e = await ns.explorer.getExecution(req.params.id);
    if (!e) throw notFound(`no execution with id ${req.params.id}`);
    if (e.status !== 'FAILED' && e.status !== 'STOPPED') {
      throw conflict(`execution ${e.id} is ${e.status}: only a FAILED or STOPPED execution can be restarted`);
    }
    const newest = (await ns.explorer.executionsOfInstance(e.instanceId))[0];
    if (newest && newest.id !== e.id) throw conflict(`execution ${e.id} is not the latest of its instance: execution ${newest.id} is ${newest.status}`);
    // A restart checks the parameters against the job's definition, as a launch does.
    requireDefinition(ns, e.jobName, 'restart executions');
    const routing: Routing = e.targetNode !== null && e.affinityKey === null ? { node: e.targetNode } : e.affinityKey !== null ? { affinityKey: e.affinityKey } : 'any';
    const restarted = await refusedAsConflict(() => ns.submit(e.jobName, e.params, routing));
    req.auditDetail = { execution: restarted.id };
    return reply.code(202).send({ ...executionJson(restarted), steps: [] });
  });

  for (const action of ['stop', 'abandon'] as const) {
    app.post<{ Params: { id: number } }>(`/api/executions/:id/${action}`, {
      config: { role: 'operator', audit: { action: `execution.${action}`, target } },
      schema: {
        summary: action === 'stop' ? 'Stop a running execution at its next chunk boundary' : 'Abandon a stopped or failed execution',
        description: action === 'stop'
          ? "As the CLI's `stop`. Needs the operator role."
          : "As the CLI's `abandon`: the instance will not run again. Only the latest execution of its instance can be abandoned: " +
            'an older one, a completed, abandoned or running one is 409. Needs the operator role.',
        tags: ['executions'],
        params: idParam,
        response: { 200: ref('Execution'), ...errors(400, 401, 403, 404, 409, 503) },
      },
    }, async (req) => {
      const id = req.params.id;
      if (!(await ns.explorer.getExecution(id))) throw notFound(`no execution with id ${id}`);
      // The execution exists: what the operator refuses is its state (ended, or still running).
      return executionJson(await refusedAsConflict(() => ns[action](id)));
    });
  }

  app.post<{ Params: { job: string }; Body: SubmitBody }>('/api/jobs/:job/executions', {
    config: { role: 'operator', audit: { action: 'job.submit', target: (req) => `job ${(req.params as { job: string }).job}` } },
    schema: {
      summary: 'Submit a job to the cluster',
      description:
        'Creates the execution at once (STARTING) for a live node that has the job to take; 202 with it. Parameters are ' +
        "checked against the job's declaration (400 names a bad one). `node` sends it to that node, `key` to the node that " +
        'had the same key before (affinity). A launch of an instance that already completed is 409; `next: true` launches ' +
        "the job's next instance instead, as the CLI's `submit --next`: `params` with `run.id` one higher than the newest " +
        "instance's, or the job's incrementer's parameters with `params` over them; routed as given. A server started without a config has no job definitions and answers 409 " +
        '(an unknown job otherwise is 404, or 409 when live nodes run it but this server\'s config lacks it). Needs the operator role.',
      tags: ['jobs', 'executions'],
      params: { type: 'object', properties: { job: { type: 'string', title: 'job name' } }, required: ['job'] },
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          params: paramsBody,
          node: { type: 'string', minLength: 1, maxLength: 200, description: 'start it on this node only (a failover or a drain hands it to any node with the job)' },
          key: { type: 'string', minLength: 1, maxLength: 1000, description: 'affinity key: launches with the same key go to the same live node' },
          next: {
            type: 'boolean',
            default: false,
            description: "launch the job's next instance, as `submit --next`: `params` with `run.id` one higher than the newest instance's, or the job's incrementer's parameters with `params` over them",
          },
        },
      },
      response: { 202: ref('Execution'), ...errors(400, 401, 403, 404, 409, 413, 415, 503) },
    },
  }, async (req, reply) => {
    const { job } = req.params;
    requireDefinitions(ns, job);
    await refuseIfRunElsewhere(ns, job, 'launch it from here');
    if (!ns.jobs.has(job)) throw notFound(`unknown job ${JSON.stringify(job)}`);
    const { params = {}, node, key, next = false } = req.body;
    if (node !== undefined && key !== undefined) throw new UsageError('give either node or key, not both');
    const routing: Routing = node !== undefined ? { node } : key !== undefined ? { affinityKey: key } : 'any';
    req.auditDetail = { params, ...(node !== undefined ? { node } : {}), ...(key !== undefined ? { key } : {}), ...(next ? { next } : {}) };
    const execution = await (next ? ns.submitNextInstance(job, params, routing) : ns.submit(job, params, routing));
    req.auditDetail.execution = execution.id;
    return reply.code(202).send({ ...executionJson(execution), steps: [] });
  });

  app.post<{ Body: { items: SubmitItem[] } }>('/api/executions/batch', {
    config: { role: 'operator', audit: { action: 'job.submitMany', target: () => 'executions' } },
    schema: {
      summary: 'Submit many launches to the cluster at once',
      description:
        `Queues up to ${MAX_BATCH} launches, each as \`POST /api/jobs/JOB/executions\` would, with one statement per batch ` +
        'of new instances. Each item is answered on its own, in order: `{ index, executionId }` when it was queued, ' +
        '`{ index, error }` when it was refused (an unknown job, bad parameters, the same instance earlier in the batch, ' +
        'or an existing instance that is completed, abandoned, queued or running). A refused item does not fail the ' +
        'others. Recorded once in the audit log, with the counts. A server started without a config has no job definitions and ' +
        'answers 409. Needs the operator role.',
      tags: ['jobs', 'executions'],
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['items'],
        properties: {
          items: {
            type: 'array',
            maxItems: MAX_BATCH,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['job'],
              properties: {
                job: { type: 'string', minLength: 1, maxLength: 200, description: 'job name' },
                params: paramsBody,
              },
            },
          },
        },
      },
      response: {
        202: {
          type: 'object',
          required: ['submitted', 'failed', 'results'],
          properties: {
            submitted: { type: 'integer', description: 'items queued' },
            failed: { type: 'integer', description: 'items refused' },
            results: {
              type: 'array',
              items: {
                type: 'object',
                required: ['index'],
                properties: {
                  index: { type: 'integer', description: "the item's position in `items`, from 0" },
                  executionId: { type: 'integer', description: 'the queued execution' },
                  error: { type: 'string', description: 'why this item was refused' },
                },
              },
            },
          },
        },
        ...errors(400, 401, 403, 409, 413, 415, 503),
      },
    },
  }, async (req, reply) => {
    const first = req.body.items[0];
    if (first) requireDefinitions(ns, first.job);
    const elsewhere = await jobsRunElsewhere(ns, req.body.items.map((item) => item.job));
    // An item of a job the live nodes run but this config lacks says so, rather than "unknown job".
    const results = (await ns.submitMany(req.body.items)).map((r) => {
      const job = req.body.items[r.index].job;
      const nodes = 'error' in r ? elsewhere.get(job) : undefined;
      return nodes ? { ...r, error: notInConfigMessage(job, 'launch it from here', nodes) } : r;
    });
    const failed = results.filter((r) => 'error' in r).length;
    req.auditDetail = { items: results.length, submitted: results.length - failed, failed };
    return reply.code(202).send({ submitted: results.length - failed, failed, results });
  });
}
