import type { FastifyInstance, FastifyRequest } from 'fastify';
import { executionJson } from '../../json.ts';
import { fireJson, scheduleJson, type ScheduleSpec } from '../../scheduler/triggers.ts';
import type { ApiContext } from '../context.ts';
import { refuseIfRunElsewhere, requireDefinition, requireDefinitions } from '../definitions.ts';
import { notFound } from '../errors.ts';
import { errors, paramsBody, ref } from '../schemas.ts';
import { queryDate } from '../validation.ts';

const nameParam = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 128, title: 'schedule name' } },
  required: ['name'],
} as const;

const target = (req: FastifyRequest) => `schedule ${(req.params as { name: string }).name}`;
const limitQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
} as const;

export async function scheduleRoutes(app: FastifyInstance, { ns, schedules }: ApiContext) {
  const mustGet = async (name: string) => {
    const s = await schedules.get(name);
    if (!s) throw notFound(`no schedule named ${name}`);
    return s;
  };

  app.get('/api/schedules', {
    schema: {
      summary: 'The triggers, with their next fire times',
      description: 'A paused trigger has no next fire time (null) until it is resumed.',
      tags: ['schedules'],
      response: { 200: { type: 'array', items: ref('Schedule') }, ...errors(401, 503) },
    },
  }, async () => (await schedules.list()).map(scheduleJson));

  app.get<{ Params: { name: string } }>('/api/schedules/:name', {
    schema: { summary: 'One trigger', tags: ['schedules'], params: nameParam, response: { 200: ref('Schedule'), ...errors(400, 401, 404, 503) } },
  }, async (req) => scheduleJson(await mustGet(req.params.name)));

  app.put<{ Params: { name: string }; Body: Omit<ScheduleSpec, 'name'> }>('/api/schedules/:name', {
    config: { role: 'operator', audit: { action: 'schedule.put', target } },
    schema: {
      summary: 'Add a trigger, or replace the one with this name',
      description:
        'A cron expression (Quartz, with seconds) in a time zone, or a fixed interval (either bounded by startAt and endAt if wanted), ' +
        'or one time (at), that runs a job with fixed parameters. ' +
        'A replaced trigger keeps its paused state, its history, and its pending fire time if its timing did not change. ' +
        '201 when created, 200 when replaced or unchanged. The job and parameters are checked against its definition: a server ' +
        'started without a config answers 409. Needs the operator role.',
      tags: ['schedules'],
      params: nameParam,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['job'],
        properties: {
          job: { type: 'string', description: 'the job it runs' },
          cron: { type: 'string', maxLength: 500, description: 'a Quartz cron expression, e.g. 0 0/15 9-17 ? * MON-FRI' },
          tz: { type: 'string', maxLength: 100, description: 'the IANA time zone of cron (default UTC)' },
          everyMs: { type: 'integer', description: 'a fixed interval instead of cron' },
          at: { type: 'string', maxLength: 64, description: 'one fire time instead of cron or everyMs: an ISO-8601 date-time with an offset or Z. A past time fires at once as a misfire' },
          startAt: { type: 'string', maxLength: 64, description: 'no fire time of cron or everyMs before this one (ISO-8601 with an offset or Z)' },
          endAt: { type: 'string', maxLength: 64, description: 'no fire time of cron or everyMs after this one (ISO-8601 with an offset or Z)' },
          params: paramsBody,
          misfire: { type: 'string', enum: ['fire-once', 'skip'] },
          misfireThresholdMs: { type: 'integer', minimum: 0 },
          noConcurrent: { type: 'boolean', description: 'a due firing waits while the previous one still runs' },
        },
      },
      response: { 200: ref('Schedule'), 201: ref('Schedule'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  }, async (req, reply) => {
    requireDefinitions(ns, req.body.job, 'add or change schedules');
    await refuseIfRunElsewhere(ns, req.body.job, 'add or change its schedules');
    const { schedule, result } = await schedules.add({ ...req.body, name: req.params.name });
    req.auditDetail = { result, ...req.body };
    return reply.code(result === 'created' ? 201 : 200).send(scheduleJson(schedule));
  });

  app.delete<{ Params: { name: string } }>('/api/schedules/:name', {
    config: { role: 'operator', audit: { action: 'schedule.remove', target } },
    schema: {
      summary: 'Remove a trigger and its history',
      description: 'Needs the operator role. 204 when removed.',
      tags: ['schedules'],
      params: nameParam,
      response: { 204: { type: 'null', description: 'removed' }, ...errors(400, 401, 403, 404, 503) },
    },
  }, async (req, reply) => {
    await mustGet(req.params.name);
    await schedules.remove(req.params.name);
    return reply.code(204).send();
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { name: string } }>(`/api/schedules/:name/${action}`, {
      config: { role: 'operator', audit: { action: `schedule.${action}`, target } },
      schema: {
        summary: action === 'pause' ? 'Pause a trigger' : 'Resume a trigger from its first fire time after now',
        description: 'Takes effect on every node at once. Needs the operator role.',
        tags: ['schedules'],
        params: nameParam,
        response: { 200: ref('Schedule'), ...errors(400, 401, 403, 404, 415, 503) },
      },
    }, async (req) => {
      await mustGet(req.params.name);
      return scheduleJson(await schedules[action](req.params.name));
    });
  }

  app.post<{ Params: { name: string } }>('/api/schedules/:name/trigger', {
    config: { role: 'operator', audit: { action: 'schedule.trigger', target } },
    schema: {
      summary: "Fire a trigger now",
      description:
        "Queues the trigger's job with its parameters and fireTime = now (the database's clock), whether or not it is paused; " +
        'its next scheduled fire time does not move. The fire log records it (outcome manual). 202 with the execution. ' +
        'A no-concurrent trigger whose previous firing is still queued or running is refused (409), ' +
        'and so is any trigger on a server started without a config. Needs the operator role.',
      tags: ['schedules'],
      params: nameParam,
      response: { 202: ref('Execution'), ...errors(400, 401, 403, 404, 409, 415, 503) },
    },
  }, async (req, reply) => {
    requireDefinition(ns, (await mustGet(req.params.name)).job, 'launch jobs');
    const execution = await schedules.fireNow(req.params.name, req.principal?.name);
    req.auditDetail = { execution: execution.id };
    return reply.code(202).send({ ...executionJson(execution), steps: [] });
  });

  app.get<{ Params: { name: string }; Querystring: { limit: number; before?: string } }>('/api/schedules/:name/firings', {
    schema: {
      summary: "A trigger's recent firings, newest first",
      description: 'Each handled fire time with its outcome: fired, misfired (fired once for missed times), skipped, refused, or manual. '
        + 'Older pages: `before` = the oldest `fireTime` of the page read.',
      tags: ['schedules'],
      params: nameParam,
      querystring: {
        ...limitQuery,
        properties: { ...limitQuery.properties, before: { type: 'string', description: 'only fire times before this one (ISO-8601)' } },
      },
      response: { 200: { type: 'array', items: ref('Firing') }, ...errors(400, 401, 404, 503) },
    },
  }, async (req) => {
    const before = req.query.before === undefined ? undefined : queryDate('before', req.query.before);
    await mustGet(req.params.name);
    return (await schedules.history(req.params.name, req.query.limit, before)).map(fireJson);
  });

  app.get<{ Querystring: { limit: number } }>('/api/firings', {
    schema: {
      summary: 'The recent firings of all triggers, newest first',
      tags: ['schedules'],
      querystring: limitQuery,
      response: { 200: { type: 'array', items: ref('Firing') }, ...errors(400, 401, 503) },
    },
  }, async (req) => (await schedules.recentFires(req.query.limit)).map(fireJson));
}
