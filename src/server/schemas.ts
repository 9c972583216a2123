/**
 * JSON schemas of what the API answers and takes. They validate requests, serialize responses
 * and make up the OpenAPI document (`GET /api/openapi.json`), so the three cannot drift apart.
 */
import type { FastifyInstance } from 'fastify';
import { BATCH_STATUSES } from '../core/status.ts';

type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, 'null'] });
const anyObject = { type: 'object', additionalProperties: true } as const;
const obj = (properties: Record<string, Schema>, required = Object.keys(properties), description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required,
  additionalProperties: false,
});

/** A reference to a shared schema, e.g. `ref('Execution')`. */
export const ref = (id: SchemaId) => ({ $ref: `${id}#` });

const counters = {
  readCount: int, writeCount: int, filterCount: int, readSkipCount: int, processSkipCount: int, writeSkipCount: int,
  commitCount: int, rollbackCount: int,
};

const amount = { type: 'integer', minimum: 0 } as const;

/** A chunk step's progress (see StepProgress in src/core/progress.ts). */
const progress: Schema = {
  type: ['object', 'null'],
  description:
    "a chunk step's progress as of its last commit: done of total items, or bytes of its input file; for a partitioned step " +
    "the sums of its partitions' (total null while any partition's is unknown). Null for a step that records none (a tasklet)",
  properties: {
    unit: { type: 'string', enum: ['items', 'bytes'] },
    done: amount,
    total: { ...amount, type: ['integer', 'null'], description: 'null when unknown' },
  },
  required: ['unit', 'done', 'total'],
  additionalProperties: false,
};

const step = {
  name: str, status: str, exitStatus: { $ref: 'ExitStatus#' }, ...counters, startTime: nullable(time), endTime: nullable(time), node: nullable(str),
  progress,
};

const execution = {
  id: int, jobName: str, instanceId: int, status: { type: 'string', enum: BATCH_STATUSES }, exitStatus: { $ref: 'ExitStatus#' },
  parameters: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
  createTime: time, startTime: nullable(time), endTime: nullable(time), node: nullable(str),
};

/** The newest later execution of an execution's instance (ExecutionSummary.restartedAs). */
const restartedAs: Schema = {
  type: ['object', 'null'],
  description:
    "the newest later execution of this one's job instance (a restart, or the execution a failover handed the instance to) " +
    'with its status when read, or null when this is the instance\'s newest. A FAILED execution whose restartedAs.status is ' +
    'COMPLETED needs nothing more. In GET /api/executions and GET /api/executions/ID; absent elsewhere (an execution just created by a submit or restart, the queue, an instance\'s executions, live events)',
  properties: { id: int, status: { type: 'string', enum: BATCH_STATUSES } },
  required: ['id', 'status'],
  additionalProperties: false,
};

const stepDetail = {
  ...step,
  id: int,
  context: { ...anyObject, description: 'the step ExecutionContext' },
};

const SCHEMAS = {
  Error: obj({ error: str }, ['error'], 'what is wrong, in one line'),
  ExitStatus: obj({ code: str, description: str }),
  Step: obj(step, Object.keys(step), 'a step execution in the shape of the CLI\'s --json'),
  Execution: obj(
    { ...execution, restartedAs, steps: { type: 'array', items: { $ref: 'Step#' } } },
    Object.keys(execution),
    'an execution in the shape of the CLI\'s --json; steps when asked for',
  ),
  Partition: obj(stepDetail, Object.keys(stepDetail), 'a partition of a partitioned step: a step execution of its own'),
  StepDetail: obj(
    { ...stepDetail, partitions: { type: 'array', items: { $ref: 'Partition#' }, description: 'partitions of a partitioned step, oldest first' } },
    Object.keys(stepDetail),
  ),
  ExecutionDetail: obj(
    {
      ...execution,
      restartedAs,
      steps: { type: 'array', items: { $ref: 'StepDetail#' }, description: 'the steps in the order they started; partitions under their manager' },
      context: { ...anyObject, description: 'the job ExecutionContext' },
      lastUpdated: nullable(time),
      targetNode: nullable(str),
      affinityKey: nullable(str),
      skips: obj({ read: int, process: int, write: int }, undefined, 'items skipped, over all steps'),
      summary: { type: ['object', 'null'], additionalProperties: true, description: "what the job's summary() reports for this execution (e.g. rejected rows), or null" },
    },
    [...Object.keys(execution), 'restartedAs', 'steps', 'context', 'lastUpdated', 'targetNode', 'affinityKey', 'skips', 'summary'],
  ),
  JobParameter: obj({
    type: { type: 'string', enum: ['string', 'int', 'number', 'date', 'boolean'] },
    default: { type: ['string', 'number', 'boolean', 'null'] },
    required: bool,
    identifying: bool,
    description: nullable(str),
  }),
  Job: obj({
    name: str,
    description: nullable(str),
    restartable: { ...nullable(bool), description: 'null when this server has no definition of the job (launchable false)' },
    maxRunning: { ...int, description: 'at most this many executions of the job run at once in the cluster (its maxRunning); absent when it has no limit' },
    fireTimeIdentifying: {
      ...bool,
      description: "false for a job whose scheduled firings are instances of its own parameters (a business date), not of their fireTime; absent otherwise",
    },
    parameters: { type: 'object', additionalProperties: { $ref: 'JobParameter#' } },
    steps: { type: 'array', items: obj({ name: str, type: str }) },
    launchable: {
      ...bool,
      description:
        "whether this server can launch it. False for a job it has no definition of (not in its config, or serve started without --config): one the cluster's " +
        'live nodes registered, listed with those nodes, without parameters or steps',
    },
    nodes: { type: 'array', items: str, description: 'the live nodes that registered it (only when launchable is false)' },
  }, ['name', 'description', 'restartable', 'parameters', 'steps', 'launchable']),
  Node: obj({
    name: str, status: { type: 'string', enum: ['alive', 'dead', 'left'] }, lastHeartbeat: time, jobs: { type: 'array', items: str },
    running: { type: 'array', items: int, description: 'executions it runs now' },
    runningPartitions: { type: 'array', items: obj({ id: int, executionId: int }), description: 'partitions it runs now' },
    host: str, pid: int, concurrency: int, heartbeatMs: int, leaseMs: int,
    heartbeatAgeMs: { ...int, description: "since its last heartbeat, by the database's clock" },
    leaseLeftMs: { ...int, description: 'left on its lease (negative: expired)' },
    suspected: { ...bool, description: 'alive, but two heartbeats late' },
    draining: { ...bool, description: 'asked to drain: takes no more work, hands over what it runs' },
    drainRequestedAt: nullable(time), startedAt: time, endedAt: nullable(time), endReason: nullable(str),
  }),
  Schedule: obj({
    name: str, job: str, cron: nullable(str), tz: nullable(str), everyMs: nullable(int),
    at: { ...nullable(time), description: 'the one fire time of a one-shot trigger' },
    startAt: { ...nullable(time), description: 'no fire time before this one (cron and interval triggers)' },
    endAt: { ...nullable(time), description: 'no fire time after this one (cron and interval triggers)' },
    params: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    misfire: { type: 'string', enum: ['fire-once', 'skip'] }, misfireThresholdMs: int, noConcurrent: bool, paused: bool,
    nextFireTime: { ...nullable(time), description: 'null while paused, or when it never fires again (a one-shot that fired, a trigger past its endAt)' },
    lastFireTime: nullable(time), lastExecutionId: nullable(int), source: { type: 'string', enum: ['config', 'runtime'] },
  }),
  Firing: obj({
    trigger: str, fireTime: time, firedAt: time, node: nullable(str),
    outcome: { type: 'string', enum: ['fired', 'misfired', 'skipped', 'refused', 'manual'] },
    executionId: nullable(int), missedFrom: nullable(time), detail: nullable(str),
  }),
  AuditRecord: obj({
    id: int,
    at: { ...time, description: "when, by the database's clock" },
    actor: { ...nullable(str), description: "the token's name (null: no token was recognised), or cli:USER@HOST for the command line" },
    role: { ...nullable(str), description: "the token's role (null for the command line)" },
    action: str,
    target: nullable(str),
    detail: { type: ['object', 'null'], additionalProperties: true },
    remote: { ...nullable(str), description: "the client's address, or cli for the command line" },
    outcome: { type: 'string', enum: ['ok', 'refused', 'forbidden', 'denied', 'error'] },
    statusCode: { ...nullable(int), description: 'the HTTP status answered (null for the command line)' },
    message: nullable(str),
  }),
  Session: obj({
    name: { ...str, description: "the token's name" },
    role: { type: 'string', enum: ['viewer', 'operator'] },
    via: { type: 'string', enum: ['bearer', 'session', 'none'] },
    expiresAt: nullable(time),
  }),
  Health: obj({ status: { type: 'string', enum: ['ok', 'unavailable', 'stopping'] }, error: str }, ['status']),
} satisfies Record<string, Schema>;

export type SchemaId = keyof typeof SCHEMAS;

/** Registers the shared schemas, so routes can refer to them with {@link ref}. */
export function addSchemas(app: FastifyInstance): void {
  for (const [id, schema] of Object.entries(SCHEMAS)) app.addSchema({ $id: id, ...schema });
}

/** The longest string value of one job parameter the API takes. */
export const MAX_PARAM_LENGTH = 65_536;

/** Parameter values as the API takes them: the job's declaration types them further. */
export const paramsBody = {
  type: 'object',
  description: 'parameter values by name; their types come from the job (dates as ISO-8601 strings)',
  // null passes here so that the job's own check names the parameter (and no coercion turns it into "").
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'], maxLength: MAX_PARAM_LENGTH },
} as const;

/** The common error answers of a route, by status. */
export function errors(...statuses: number[]): Record<number, Schema> {
  const what: Record<number, string> = {
    400: 'bad input, naming what is wrong',
    401: 'no token, or a wrong one',
    403: "the token's role may not do this, or the request came from another origin or host",
    404: 'no such execution, job, schedule or node',
    409: 'what the state of the execution, instance or node refuses',
    413: 'the body is too large',
    415: 'the body is not JSON',
    503: 'the job repository is unavailable',
  };
  return Object.fromEntries(statuses.map((s) => [s, { description: what[s], ...ref('Error') }]));
}
