/**
 * The REST API and the Prometheus metrics (SPEC sections 6 and 7a) over a real repository, on
 * both backends: requests go through Fastify's router in-process with real tokens; nodes started
 * here run what the API submits.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { count, importCsv, noop, partitionedCount } from '../../examples/nightshift.config.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { startNode, type ClusterNode } from '../../src/cluster/node.ts';
import { createHttpApi, type HttpApiOptions } from '../../src/server/http-api.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { SQL } from '../../src/repository/sql.ts';
import { pruneHistory } from '../../src/repository/retention.ts';
import { backends, waitFor } from '../support/backends.ts';

const jobs = [noop, count, partitionedCount, importCsv];

export const TOKENS: HttpApiOptions['tokens'] = [
  { name: 'alice', role: 'operator', secret: 'alice-operator-secret' },
  { name: 'victor', role: 'viewer', secret: 'victor-viewer-secret' },
];
const SECRET = { alice: 'alice-operator-secret', victor: 'victor-viewer-secret' } as const;

describe.each(backends())('HTTP API ($name)', (backend) => {
  const opened: (Nightshift | ClusterNode)[] = [];
  // Each test's nodes and pools end with it: kept to the end of the file, they added up to
  // PostgreSQL's max_connections, and a suite file running beside this one could not connect.
  afterEach(async () => {
    for (const x of opened.splice(0).reverse()) await ('shutdown' in x ? x.shutdown() : x.close());
  });
  afterAll(() => backend.cleanup());
  /** `defined`: the jobs the server has definitions of (none: serve without a config). */
  const setup = async (label: string, options: Partial<HttpApiOptions> = {}, defined: typeof jobs = jobs) => {
    const url = backend.freshUrl(label);
    const ns = await createNightshift({ db: url, jobs: defined, logger: silentLogger });
    opened.push(ns);
    const app = createHttpApi(ns, { tokens: TOKENS, ...options });
    const send = async (method: string, path: string, o: { as?: keyof typeof SECRET; body?: unknown; contentType?: string } = {}) => {
      const headers: Record<string, string> = { authorization: `Bearer ${SECRET[o.as ?? 'alice']}` };
      if (method !== 'GET' && method !== 'DELETE') headers['content-type'] = o.contentType ?? 'application/json';
      const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      const r = await app.inject({ method: method as 'GET', url: path, headers, payload });
      const json = r.headers['content-type']?.toString().startsWith('application/json');
      return { status: r.statusCode, body: json ? r.json() : r.body, headers: r.headers };
    };
    const get = (path: string, as?: keyof typeof SECRET) => send('GET', path, { as });
    const post = (path: string, body?: unknown, as?: keyof typeof SECRET) => send('POST', path, { body, as });
    const node = async (name: string, extra: Partial<Parameters<typeof startNode>[0]> = {}) => {
      const n = await startNode({ db: url, jobs, name: `${name}-${backend.name}`, pollMs: 100, logger: silentLogger, lease: { heartbeatMs: 200, leaseMs: 1500 }, ...extra });
      opened.push(n);
      return n;
    };
    const audit = async (action?: string) => (await get(`/api/audit${action ? `?action=${action}` : ''}`)).body as { actor: string; action: string; target: string; outcome: string; remote: string; at: string; statusCode: number; detail: Record<string, unknown> | null }[];
    return { url, ns, app, send, get, post, node, audit };
  };

  it('lists jobs with their parameter schemas, and executions with their steps in the CLI JSON shapes', async () => {
    const { ns, get } = await setup('api-read');
    const done = await ns.run('count', { items: 30, chunk: 10, tag: 'api' });
    const jobList = (await get('/api/jobs', 'victor')).body;
    expect(jobList).toContainEqual(expect.objectContaining({
      name: 'count',
      // defineJob's description, for the console's Jobs page.
      description: expect.stringContaining('Writes the numbers 1..items'),
      parameters: expect.objectContaining({
        items: { type: 'int', default: 1000, required: false, identifying: true, description: null },
        delayMs: { type: 'int', default: 0, required: false, identifying: false, description: null },
      }),
      steps: [{ name: 'count', type: 'chunk' }],
    }));
    expect((await get('/api/jobs/import-csv')).body.parameters.input).toEqual({ type: 'string', default: null, required: true, identifying: true, description: null });
    const list = await get('/api/executions?job=count&status=COMPLETED', 'victor');
    expect(list.status).toBe(200);
    expect(list.body).toEqual([expect.objectContaining({ id: done.id, jobName: 'count', status: 'COMPLETED', parameters: expect.objectContaining({ items: 30, tag: 'api' }) })]);
    expect((await get('/api/executions?status=FAILED')).body).toEqual([]);
    const second = await ns.run('noop');
    const withSteps = await get('/api/executions?steps=1');
    expect(withSteps.body.map((e: { id: number; steps: { name: string; writeCount: number }[] }) => [e.id, e.steps.map((s) => [s.name, s.writeCount])]))
      .toEqual([[second.id, [['noop', 0]]], [done.id, [['count', 30]]]]);
    expect((await get('/api/executions')).body.every((e: object) => !('steps' in e))).toBe(true);
    const one = await get(`/api/executions/${done.id}`, 'victor');
    expect(one.body).toMatchObject({
      id: done.id, status: 'COMPLETED', context: {}, skips: { read: 0, process: 0, write: 0 }, summary: null,
      steps: [{ name: 'count', status: 'COMPLETED', readCount: 30, writeCount: 30, commitCount: 4, context: expect.any(Object) }],
    });
    expect(one.body.endTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(one.headers['cache-control']).toBe('no-store');
  });

  it('filters executions by job, statuses, node, time and parameter text, and pages them by cursor, stable under inserts', async () => {
    const { ns, get } = await setup('api-page');
    const first = await ns.run('count', { items: 3, tag: 'Customer-42' });
    const failed = await ns.run('count', { items: 3, tag: 'b', failAt: 2 });
    const ids = [first.id, failed.id];
    for (let i = 0; i < 5; i++) ids.push((await ns.run('noop', { 'run.id': i + 1 })).id);
    const newestFirst = [...ids].reverse();
    const page1 = await get('/api/executions?limit=3');
    expect(page1.body.map((e: { id: number }) => e.id)).toEqual(newestFirst.slice(0, 3));
    const cursor = page1.headers['x-next-cursor'];
    // Relative to the request, so that it holds under a prefix the server does not see (/batch/api/...).
    expect(page1.headers.link).toBe(`<executions?limit=3&cursor=${cursor}>; rel="next"`);
    expect(new URL(`executions?limit=3&cursor=${cursor}`, 'http://app/batch/api/executions?limit=3').pathname).toBe('/batch/api/executions');
    // An execution added between two pages does not shift the next page.
    await ns.run('noop', { 'run.id': 99 });
    const page2 = await get(`/api/executions?limit=3&cursor=${cursor}`);
    expect(page2.body.map((e: { id: number }) => e.id)).toEqual(newestFirst.slice(3, 6));
    const page3 = await get(`/api/executions?limit=3&cursor=${page2.headers['x-next-cursor']}`);
    expect(page3.body.map((e: { id: number }) => e.id)).toEqual(newestFirst.slice(6));
    expect(page3.headers['x-next-cursor']).toBeUndefined();

    const idsOf = async (query: string) => ((await get(`/api/executions?${query}`)).body as { id: number }[]).map((e) => e.id);
    expect(await idsOf('status=FAILED,STOPPED')).toEqual([failed.id]);
    // Several statuses page together, newest first.
    const everything = await idsOf('limit=100');
    expect(everything).toHaveLength(8);
    const mixed = await get('/api/executions?status=FAILED,COMPLETED&limit=4');
    expect(mixed.body.map((e: { id: number }) => e.id)).toEqual(everything.slice(0, 4));
    expect(await idsOf(`status=FAILED,COMPLETED&limit=4&cursor=${mixed.headers['x-next-cursor']}`)).toEqual(everything.slice(4));
    expect(await idsOf(`status=FAILED,STOPPED,ABANDONED&limit=1`)).toEqual([failed.id]);
    expect(await idsOf('job=count&status=COMPLETED')).toEqual([first.id]);
    expect(await idsOf('q=customer-4')).toEqual([first.id]);
    expect(await idsOf('q=50%25')).toEqual([]); // the pattern characters are text
    expect(await idsOf(`node=${encodeURIComponent(first.node!)}&job=count`)).toEqual([failed.id, first.id]);
    expect(await idsOf('node=nobody')).toEqual([]);
    // A node and an ended status (the partial index of migration 6), and a running or COMPLETED one.
    expect(await idsOf(`node=${encodeURIComponent(failed.node!)}&status=FAILED`)).toEqual([failed.id]);
    expect(await idsOf('node=nobody&status=FAILED')).toEqual([]);
    expect(await idsOf(`node=${encodeURIComponent(first.node!)}&status=COMPLETED&job=count`)).toEqual([first.id]);
    const from = new Date(first.createTime.getTime() + 1).toISOString();
    expect(await idsOf(`job=count&from=${from}`)).toEqual(failed.createTime > first.createTime ? [failed.id] : []);
    expect(await idsOf(`job=count&to=${first.createTime.toISOString()}`)).toEqual([]);
    expect(await idsOf(`job=count&to=${new Date(first.createTime.getTime() + 1).toISOString()}`)).toEqual([first.id]);
    expect(await idsOf(`job=count&to=${encodeURIComponent(new Date(first.createTime.getTime() + 3_600_001).toISOString().replace('Z', '+01:00'))}`)).toEqual([first.id]);

    // Without an offset a time is UTC, and a date alone its midnight UTC, whatever the server's zone.
    const noOffset = (ms: number) => new Date(ms).toISOString().slice(0, -1);
    const day = (d: Date, days: number) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + days)).toISOString().slice(0, 10);
    const zoneBefore = process.env.TZ;
    try {
      for (const [zone, minutes] of [['UTC', 0], ['Europe/Paris', -60], ['Pacific/Kiritimati', -840]] as const) {
        process.env.TZ = zone; // Node reads the zone again when TZ is set
        expect(new Date(2024, 0, 15).getTimezoneOffset(), zone).toBe(minutes);
        expect(await idsOf(`job=count&to=${noOffset(first.createTime.getTime())}`), zone).toEqual([]);
        expect(await idsOf(`job=count&to=${noOffset(first.createTime.getTime() + 1)}`), zone).toEqual([first.id]);
        expect(await idsOf(`job=count&to=${encodeURIComponent(noOffset(first.createTime.getTime() + 1).replace('T', ' '))}`), zone).toEqual([first.id]);
        // What JSON Schema's date-time also takes: a lower-case t and z, an offset of hours alone.
        expect(await idsOf(`job=count&to=${noOffset(first.createTime.getTime() + 1).toLowerCase()}z`), zone).toEqual([first.id]);
        expect(await idsOf(`job=count&to=${encodeURIComponent(`${noOffset(first.createTime.getTime() + 3_600_001)}+01`)}`), zone).toEqual([first.id]);
        expect(await idsOf(`job=count&to=${encodeURIComponent(`${noOffset(first.createTime.getTime() + 3_600_000)}+0100`)}`), zone).toEqual([]);
        expect(await idsOf(`job=count&from=${day(first.createTime, 0)}&to=${day(failed.createTime, 1)}`), zone).toEqual([failed.id, first.id]);
        expect(await idsOf(`job=count&from=${day(failed.createTime, 1)}`), zone).toEqual([]);
        expect(await idsOf(`job=count&to=${day(first.createTime, 0)}`), zone).toEqual([]);
      }
    } finally {
      if (zoneBefore === undefined) delete process.env.TZ;
      else process.env.TZ = zoneBefore;
    }
  });

  it('answers bad input with 400 and unknown ids, jobs or routes with 404, naming what is wrong', async () => {
    const { get, post } = await setup('api-bad');
    expect(await get('/api/nope')).toMatchObject({ status: 404, body: { error: 'no route GET /api/nope' } });
    const bad = async (path: string, error: string | RegExp) => {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      if (typeof error === 'string') expect(r.body.error).toBe(error);
      else expect(r.body.error).toMatch(error);
    };
    await bad('/api/executions?job=a&job=b', 'query parameter job is given 2 times; give it once');
    await bad('/api/executions?limit=5000', 'limit must be at most 1000, got 5000');
    await bad('/api/executions?limit=0', 'limit must be at least 1, got 0');
    await bad('/api/executions?steps=yes', 'steps must be one of 0, 1, true, false, got "yes"');
    await bad('/api/executions?status=DONE', /^status must be one of STARTING, .* got "DONE"$/);
    const dateForms = 'an ISO-8601 date or date-time such as 2024-01-15 or 2024-01-15T10:00:00+02:00 (a time without an offset is UTC)';
    await bad('/api/executions?from=yesterday', `from must be ${dateForms}, got "yesterday"`);
    // Impossible days and times are refused, not rolled over; trailing text is not ignored.
    await bad('/api/executions?from=2024-02-30', `from must be ${dateForms}, got "2024-02-30" (there is no such day)`);
    await bad('/api/executions?to=2023-02-29T10:00', `to must be ${dateForms}, got "2023-02-29T10:00" (there is no such day)`);
    // An offset's + sent as is arrives as a space: the answer says how to send it.
    await bad('/api/executions?from=2024-01-15T10:00+02:00', `from must be ${dateForms}, got "2024-01-15T10:00 02:00": a + in a URL's query string reads as a space, so send an offset's + as %2B`);
    await bad('/api/executions?to=2024-01-15T24:30', `to must be ${dateForms}, got "2024-01-15T24:30"`);
    await bad('/api/executions?to=2024-01-15T24:00', `to must be ${dateForms}, got "2024-01-15T24:00"`);
    await bad('/api/executions?to=2024-01-15T10:00:00Zjunk', `to must be ${dateForms}, got "2024-01-15T10:00:00Zjunk"`);
    await bad('/api/executions?from=', `from must be ${dateForms}, got ""`);
    await bad(`/api/executions?from=${'2'.repeat(65)}`, 'from is 65 characters long; at most 64 are allowed');
    await bad('/api/executions?colour=red', 'unknown query parameter colour');
    await bad('/api/executions/abc', 'execution id must be an integer, got "abc"');
    expect(await get('/api/executions/42')).toMatchObject({ status: 404, body: { error: 'no execution with id 42' } });
    expect(await post('/api/jobs/count/executions', [1])).toMatchObject({ status: 400, body: { error: 'the body must be an object, got [1]' } });
    expect(await post('/api/jobs/count/executions', { node: { name: 'a' } })).toMatchObject({ status: 400, body: { error: 'node must be a string, got {"name":"a"}' } });
    expect(await post('/api/jobs/count/executions', { nodes: 'a' })).toMatchObject({ status: 400, body: { error: 'the body has an unknown property nodes' } });
    expect(await post('/api/jobs/count/executions', { node: 'a', key: 'b' })).toMatchObject({ status: 400, body: { error: 'give either node or key, not both' } });
    expect(await post('/api/jobs/count/executions', { next: 'yes' })).toMatchObject({ status: 400, body: { error: 'next must be true or false, got "yes"' } });
    expect(await post('/api/jobs/count/executions', { next: true, node: 'a', key: 'b' })).toMatchObject({ status: 400, body: { error: 'give either node or key, not both' } });
    expect(await post('/api/jobs/nope/executions', {})).toMatchObject({ status: 404, body: { error: 'unknown job "nope"' } });
    expect(await post('/api/jobs/count/executions', { params: { items: 'many' } })).toMatchObject({ status: 400, body: { error: 'job count: parameter items must be an integer, got "many"' } });
    expect(await post('/api/jobs/count/executions', { params: { items: null } })).toMatchObject({ status: 400, body: { error: 'job count: parameter items must be an integer, got null' } });
    expect((await post('/api/jobs/count/executions', { params: { itms: 5 } })).body.error).toMatch(/unknown parameter itms/);
    expect(await post('/api/executions/7/stop')).toMatchObject({ status: 404, body: { error: 'no execution with id 7' } });
    const malformed = await post('/api/jobs/count/executions', '{"params":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/^request body is not valid JSON: /);
  });

  it("with a config that lacks a job the live nodes run: lists and shows it read-only (launchable false, with its nodes), after the config's jobs", async () => {
    const { url, get, post, send, node } = await setup('api-part-config', {}, [noop]);
    const full = await createNightshift({ db: url, jobs, logger: silentLogger });
    opened.push(full);
    const done = await full.run('count', { items: 5, chunk: 5, tag: 'elsewhere' });
    const failed = await full.run('count', { items: 5, chunk: 5, failAt: 3, tag: 'elsewhere-failed' });
    await scheduleAdmin(full).add({ name: 'count-hourly', job: 'count', everyMs: 3_600_000, params: { items: 5 } });
    // Before any node runs it, it is unknown here, as before.
    expect(await get('/api/jobs/count')).toMatchObject({ status: 404, body: { error: 'unknown job "count"' } });
    expect((await get('/api/jobs')).body.map((j: { name: string }) => j.name)).toEqual(['noop']);
    const n = await node('part-config-node', { jobs: [noop, count], scheduler: false });
    const notHere = { name: 'count', description: null, restartable: null, parameters: {}, steps: [], launchable: false, nodes: [n.name] };
    const list = (await get('/api/jobs', 'victor')).body as { name: string; launchable: boolean }[];
    // Its own jobs first, as it defines them (noop, which the node runs too, is not listed twice), then the others.
    expect(list.map((j) => [j.name, j.launchable])).toEqual([['noop', true], ['count', false]]);
    expect(list[1]).toEqual(notHere);
    expect(await get('/api/jobs/count', 'victor')).toMatchObject({ status: 200, body: notHere });
    expect((await get('/api/jobs/noop')).body).toMatchObject({ name: 'noop', launchable: true });
    expect(await get('/api/jobs/import-csv')).toMatchObject({ status: 404, body: { error: 'unknown job "import-csv"' } });
    // Its history is there to see; launching it from here is refused, saying why and where it runs.
    expect(((await get('/api/executions?job=count')).body as { id: number }[]).map((e) => e.id)).toEqual([failed.id, done.id]);
    expect(await post('/api/jobs/count/executions', { params: { items: 5 } })).toMatchObject({
      status: 409,
      body: { error: `job "count" is not in this server's config (live nodes run it: ${n.name}): add it to the config serve loads to launch it from here` },
    });
    expect(await post('/api/jobs/import-csv/executions', {})).toMatchObject({ status: 404, body: { error: 'unknown job "import-csv"' } });
    // What needs its definition (a restart, firing its schedule now) says the same, not "unknown job".
    const notInConfig = (toDo: string) => ({ status: 409, body: { error: `job "count" is not in this server's config: add it to the config serve loads to ${toDo}` } });
    expect(await post(`/api/executions/${failed.id}/restart`)).toMatchObject(notInConfig('restart executions'));
    expect(await post('/api/schedules/count-hourly/trigger')).toMatchObject(notInConfig('launch jobs'));
    expect(await send('PUT', '/api/schedules/count-daily', { body: { job: 'count', everyMs: 86_400_000, params: { items: 5 } } })).toMatchObject({
      status: 409,
      body: { error: `job "count" is not in this server's config (live nodes run it: ${n.name}): add it to the config serve loads to add or change its schedules` },
    });
    // A job that nothing runs is still a mistyped name.
    expect((await send('PUT', '/api/schedules/typo', { body: { job: 'cuont', everyMs: 60_000 } })).status).toBe(400);
    // In a batch, such an item is refused with the same reason; the others are queued.
    const batch = await post('/api/executions/batch', { items: [{ job: 'noop' }, { job: 'count', params: { items: 5 } }, { job: 'cuont' }] });
    expect(batch.status).toBe(202);
    expect(batch.body.results[0]).toEqual({ index: 0, executionId: expect.any(Number) });
    expect(batch.body.results[1]).toEqual({ index: 1, error: `job "count" is not in this server's config (live nodes run it: ${n.name}): add it to the config serve loads to launch it from here` });
    expect(batch.body.results[2]).toEqual({ index: 2, error: expect.stringMatching(/^unknown job cuont/) });
    expect((await full.listExecutions({ job: 'count' })).map((e) => e.id)).toEqual([failed.id, done.id]);
  });

  it("without job definitions (serve without a config): lists the live nodes' jobs as not launchable, and answers 409 where a definition is needed", async () => {
    const { url, ns, get, send, post, node, audit } = await setup('api-no-config', {}, []);
    const full = await createNightshift({ db: url, jobs, logger: silentLogger });
    opened.push(full);
    const failed = await full.run('count', { items: 5, chunk: 5, failAt: 3, tag: 'no-config' });
    expect(failed.status).toBe('FAILED');
    await scheduleAdmin(full).add({ name: 'hourly', job: 'noop', everyMs: 3_600_000 });
    expect((await get('/api/jobs', 'victor')).body).toEqual([]);
    const n = await node('no-config-node', { jobs: [noop, count], scheduler: false });
    const notHere = (name: string) => ({ name, description: null, restartable: null, parameters: {}, steps: [], launchable: false, nodes: [n.name] });
    expect((await get('/api/jobs', 'victor')).body).toEqual([notHere('count'), notHere('noop')]);
    expect((await get('/api/jobs/count', 'victor')).body).toEqual(notHere('count'));
    expect(await get('/api/jobs/import-csv')).toMatchObject({ status: 404, body: { error: 'unknown job "import-csv": this server has no config, and no live node runs it' } });
    const refused = (job: string, toDo: string) => ({ status: 409, body: { error: `job "${job}" is not defined in this server's config: start serve with --config FILE to ${toDo}` } });
    expect(await post('/api/jobs/count/executions', { params: { items: 3 } })).toEqual(expect.objectContaining(refused('count', 'launch jobs')));
    expect(await post('/api/executions/batch', { items: [{ job: 'noop' }, { job: 'count' }] })).toEqual(expect.objectContaining(refused('noop', 'launch jobs')));
    expect(await post(`/api/executions/${failed.id}/restart`)).toEqual(expect.objectContaining(refused('count', 'restart executions')));
    expect(await send('PUT', '/api/schedules/every-minute', { body: { job: 'count', everyMs: 60_000 } })).toEqual(expect.objectContaining(refused('count', 'add or change schedules')));
    expect(await post('/api/schedules/hourly/trigger')).toEqual(expect.objectContaining(refused('noop', 'launch jobs')));
    expect((await audit('job.submit')).map((a) => [a.outcome, a.statusCode])).toEqual([['refused', 409]]);
    // Nothing was launched; what acts on the repository only works as usual.
    expect((await ns.listExecutions()).map((e) => e.id)).toEqual([failed.id]);
    expect((await get(`/api/executions/${failed.id}`, 'victor')).body).toMatchObject({ status: 'FAILED', summary: null });
    expect((await post('/api/schedules/hourly/pause')).body).toMatchObject({ name: 'hourly', paused: true });
    expect((await post(`/api/executions/${failed.id}/abandon`)).body).toMatchObject({ id: failed.id, status: 'ABANDONED' });
    const spec = (await send('GET', '/api/openapi.json')).body;
    expect(spec.components.schemas.Job.required).toContain('launchable');
    expect(Object.keys(spec.paths['/api/schedules/{name}'].put.responses)).toContain('409');
    expect(Object.keys(spec.paths['/api/executions/batch'].post.responses)).toContain('409');
  });

  it('submits to the cluster (202), a node runs it; a completed instance is refused with 409', async () => {
    const { ns, get, post, node, audit } = await setup('api-submit');
    const n = await node('api-node');
    const submitted = await post('/api/jobs/count/executions', { params: { items: 25, chunk: 10, tag: 'submitted' } });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ jobName: 'count', status: 'STARTING', steps: [] });
    const done = await ns.waitForEnd(submitted.body.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', node: n.name });
    expect((await get(`/api/executions/${done.id}`)).body.steps[0]).toMatchObject({ writeCount: 25 });
    const again = await post('/api/jobs/count/executions', { params: { items: 25, chunk: 10, tag: 'submitted' } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/already completed/);
    const routed = await post('/api/jobs/noop/executions', { key: 'customer-7' });
    expect(routed.status).toBe(202);
    expect((await ns.waitForEnd(routed.body.id, { timeoutMs: 30_000 })).node).toBe(n.name);
    const nodes = (await get('/api/nodes', 'victor')).body;
    expect(nodes).toContainEqual(expect.objectContaining({
      name: n.name, status: 'alive', jobs: jobs.map((j) => j.name), concurrency: 4, draining: false, suspected: false, running: [], leaseMs: 1500, heartbeatMs: 200,
    }));
    const mine = nodes.find((x: { name: string }) => x.name === n.name);
    expect(mine.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(mine.heartbeatAgeMs).toBeLessThan(1500);
    expect(mine.leaseLeftMs).toBeGreaterThan(0);
    const submits = await audit('job.submit');
    expect(submits.map((a) => [a.actor, a.target, a.outcome, a.statusCode])).toEqual([
      ['alice', 'job noop', 'ok', 202], ['alice', 'job count', 'refused', 409], ['alice', 'job count', 'ok', 202],
    ]);
    expect(submits[2].detail).toEqual({ params: { items: 25, chunk: 10, tag: 'submitted' }, execution: submitted.body.id });
    expect(submits[0].detail).toEqual({ params: {}, key: 'customer-7', execution: routed.body.id });
  });

  it("launches the job's next instance with next: true, as `submit --next` does, routed as asked; without it a completed instance is 409 saying how", async () => {
    const { ns, post, send, node, audit } = await setup('api-next');
    const n = await node('next-node');
    /** Submits through the API, and waits for the node to complete it. */
    const submitted = async (job: string, body: Record<string, unknown> = {}) => {
      const r = await post(`/api/jobs/${job}/executions`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const done = await ns.waitForEnd(r.body.id, { timeoutMs: 30_000 });
      expect(done).toMatchObject({ status: 'COMPLETED', node: n.name });
      return { body: r.body as { id: number; instanceId: number; parameters: Record<string, unknown> }, done };
    };
    const params = { items: 3, chunk: 3, tag: 'next' };
    const first = await submitted('count', { params });
    const hint = "start the job's next instance (`nightshift run --next` or `submit --next`, `ns.runNextInstance()` or `ns.submitNextInstance()`, or `next: true` in the HTTP API)";
    expect(await post('/api/jobs/count/executions', { params })).toMatchObject({
      status: 409,
      body: { error: `job count already completed for parameters chunk=3 items=3 tag=next (execution ${first.body.id}); change an identifying parameter, or ${hint}, to run a new instance` },
    });
    // A new instance each time: run.id one higher than the newest instance's, the parameters as given.
    const second = await submitted('count', { params, next: true });
    expect(second.body.parameters).toMatchObject({ ...params, 'run.id': 1 });
    expect(second.body.instanceId).not.toBe(first.body.instanceId);
    // With routing: an affinity key, a node.
    const keyed = await submitted('count', { params, next: true, key: 'customer-9' });
    expect(keyed.body.parameters).toMatchObject({ ...params, 'run.id': 2 });
    expect((await ns.explorer.getExecution(keyed.body.id))?.affinityKey).toBe('customer-9');
    const pinned = await submitted('count', { params, next: true, node: n.name });
    expect(pinned.body.parameters).toMatchObject({ ...params, 'run.id': 3 });
    expect((await ns.explorer.getExecution(pinned.body.id))?.targetNode).toBe(n.name);
    expect(new Set([first, second, keyed, pinned].map((x) => x.body.instanceId)).size).toBe(4);

    // A job without identifying parameters, as the CLI's `submit --next` (ns.submitNextInstance)
    // does it: a given run.id does not override the default rule, and both count on one another.
    const plain = await submitted('noop');
    expect(await post('/api/jobs/noop/executions', {})).toMatchObject({
      status: 409,
      body: { error: `job noop already completed for no identifying parameters (execution ${plain.body.id}); ${hint} to run it again` },
    });
    expect((await submitted('noop', { params: { 'run.id': 1 }, next: true })).body.parameters).toEqual({ 'run.id': 1 });
    expect((await ns.waitForEnd((await ns.submitNextInstance('noop', { 'run.id': 1 })).id, { timeoutMs: 30_000 })).params).toEqual({ 'run.id': 2 });
    expect((await submitted('noop', { params: { 'run.id': 1 }, next: true })).body.parameters).toEqual({ 'run.id': 3 });

    // The audit log says it was a next instance, as it says the routing.
    const details = (await audit('job.submit')).map((a) => a.detail);
    expect(details).toContainEqual({ params, key: 'customer-9', next: true, execution: keyed.body.id });
    expect(details).toContainEqual({ params, node: n.name, next: true, execution: pinned.body.id });
    expect(details).toContainEqual({ params, execution: first.body.id });
    const route = (await send('GET', '/api/openapi.json')).body.paths['/api/jobs/{job}/executions'].post;
    expect(route.description).toContain('`next: true`');
    expect(route.requestBody.content['application/json'].schema.properties.next).toMatchObject({ type: 'boolean', default: false, description: expect.stringContaining('submit --next') });
  });

  it('lists the queue, the next to run first: queued executions no node has claimed, oldest first', async () => {
    const { ns, get, post } = await setup('api-queue');
    await ns.run('noop', { 'run.id': 1 });
    // No node runs here: what is submitted stays queued.
    const ids: number[] = [];
    for (let i = 2; i <= 6; i++) ids.push((await post('/api/jobs/noop/executions', { params: { 'run.id': i } })).body.id);
    const queue = await get('/api/queue', 'victor');
    expect(queue.status).toBe(200);
    expect(queue.body.map((e: { id: number }) => e.id)).toEqual(ids);
    expect(queue.body[0]).toMatchObject({ jobName: 'noop', status: 'STARTING', node: null, parameters: { 'run.id': 2 } });
    expect((await get('/api/queue?limit=2')).body.map((e: { id: number }) => e.id)).toEqual(ids.slice(0, 2));
    expect((await get('/api/queue?limit=0')).status).toBe(400);
  });

  it('submits a batch: each item answered on its own, audited once, then run by a node; a viewer may not', async () => {
    const { ns, post, send, node, audit } = await setup('api-batch');
    await ns.run('noop', { 'run.id': 1 });
    const items = [
      { job: 'count', params: { items: 5, chunk: 5, tag: 'b1' } },
      { job: 'noop', params: { 'run.id': 1 } },
      { job: 'count', params: { items: 'many' } },
      { job: 'nosuch' },
      { job: 'count', params: { items: 5, chunk: 5, tag: 'b1' } },
      { job: 'count', params: { items: 6, chunk: 5, tag: 'b2' } },
    ];
    expect((await post('/api/executions/batch', { items }, 'victor')).status).toBe(403);
    expect(await ns.listExecutions({ status: 'STARTING' })).toEqual([]);
    const r = await post('/api/executions/batch', { items });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ submitted: 2, failed: 4 });
    expect(r.body.results.map((x: { index: number; executionId?: number }) => [x.index, typeof x.executionId])).toEqual([
      [0, 'number'], [1, 'undefined'], [2, 'undefined'], [3, 'undefined'], [4, 'undefined'], [5, 'number'],
    ]);
    expect(r.body.results[1].error).toMatch(/already completed/);
    expect(r.body.results[2].error).toMatch(/items/);
    expect(r.body.results[3].error).toMatch(/unknown job nosuch/);
    expect(r.body.results[4].error).toMatch(/item 0/);
    const bad = await post('/api/executions/batch', { items: [{ params: {} }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/job/);
    const batches = await audit('job.submitMany');
    expect(batches.map((a) => [a.actor, a.outcome, a.statusCode])).toEqual([['alice', 'refused', 400], ['alice', 'ok', 202], ['victor', 'forbidden', 403]]);
    expect(batches[1].detail).toEqual({ items: 6, submitted: 2, failed: 4 });
    const n = await node('batch-node');
    for (const id of [r.body.results[0].executionId, r.body.results[5].executionId]) {
      expect(await ns.waitForEnd(id, { timeoutMs: 30_000 })).toMatchObject({ status: 'COMPLETED', node: n.name });
    }
    const spec = (await send('GET', '/api/openapi.json')).body;
    expect(spec.paths['/api/executions/batch'].post.summary).toMatch(/many launches/);
  });

  it("stops a running execution, restarts it on the cluster, abandons one; what an execution's state refuses is 409", async () => {
    const { ns, post, send, node, audit } = await setup('api-stop');
    const { execution, done } = await ns.start('count', { items: 400, chunk: 10, delayMs: 2, tag: 'stop' });
    const stopped = await post(`/api/executions/${execution.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.id).toBe(execution.id);
    expect((await done).status).toBe('STOPPED');
    expect((await post(`/api/executions/${execution.id}/stop`)).status).toBe(409);
    // Restart goes to the cluster: a node resumes it from its checkpoint.
    const restarted = await post(`/api/executions/${execution.id}/restart`);
    expect(restarted).toMatchObject({ status: 202, body: { jobName: 'count', status: 'STARTING', instanceId: execution.instanceId } });
    expect((await post(`/api/executions/${execution.id}/restart`)).body.error).toBe(`execution ${execution.id} is not the latest of its instance: execution ${restarted.body.id} is STARTING`);
    await node('api-restarter');
    const resumed = await ns.waitForEnd(restarted.body.id, { timeoutMs: 30_000 });
    expect(resumed.status).toBe('COMPLETED');
    expect(resumed.steps[0].readCount + (await ns.getExecution(execution.id))!.steps[0].readCount).toBe(400);
    expect(await post(`/api/executions/${resumed.id}/restart`)).toMatchObject({ status: 409, body: { error: `execution ${resumed.id} is COMPLETED: only a FAILED or STOPPED execution can be restarted` } });
    // An older execution of an instance cannot be abandoned, as it cannot be restarted: the newest decides.
    expect(await post(`/api/executions/${execution.id}/abandon`)).toMatchObject({
      status: 409, body: { error: `execution ${execution.id} is not the latest of its instance: execution ${resumed.id} is COMPLETED` },
    });
    expect((await ns.getExecution(execution.id))!.status).toBe('STOPPED');
    // The instance's executions, oldest first: the stopped one and its restart; an unknown instance is 404.
    const runs = await send('GET', `/api/instances/${execution.instanceId}/executions`);
    expect(runs.status).toBe(200);
    expect(runs.body.map((e: { id: number; status: string }) => [e.id, e.status])).toEqual([[execution.id, 'STOPPED'], [resumed.id, 'COMPLETED']]);
    expect((await send('GET', '/api/instances/999999/executions')).status).toBe(404);

    const other = await ns.start('count', { items: 400, chunk: 10, delayMs: 2, tag: 'abandon' });
    await ns.stop(other.execution.id);
    await other.done;
    expect((await post(`/api/executions/${other.execution.id}/abandon`)).body).toMatchObject({ id: other.execution.id, status: 'ABANDONED' });
    expect(await post(`/api/executions/${resumed.id}/abandon`)).toMatchObject({ status: 409, body: { error: `execution ${resumed.id} is COMPLETED and cannot be abandoned` } });
    const log = await audit();
    expect(log.map((a) => [a.action, a.target, a.outcome])).toEqual([
      ['execution.abandon', `execution ${resumed.id}`, 'refused'],
      ['execution.abandon', `execution ${other.execution.id}`, 'ok'],
      ['execution.abandon', `execution ${execution.id}`, 'refused'],
      ['execution.restart', `execution ${resumed.id}`, 'refused'],
      ['execution.restart', `execution ${execution.id}`, 'refused'],
      ['execution.restart', `execution ${execution.id}`, 'ok'],
      ['execution.stop', `execution ${execution.id}`, 'refused'],
      ['execution.stop', `execution ${execution.id}`, 'ok'],
    ]);
    expect(log.every((a) => a.actor === 'alice' && a.remote === '127.0.0.1' && /Z$/.test(a.at))).toBe(true);
  });

  it('marks a failure that a restart has since completed: restartedAs in lists, in one execution, and in the OpenAPI document', async () => {
    const { ns, get, post, send, node } = await setup('api-restarted');
    const failed = await ns.run('count', { items: 20, chunk: 5, tag: 'fixed', failAt: 7 });
    const open = await ns.run('count', { items: 20, chunk: 5, tag: 'still-failed', failAt: 7 });
    expect([failed.status, open.status]).toEqual(['FAILED', 'FAILED']);
    const restarted = await post(`/api/executions/${failed.id}/restart`);
    expect(restarted.status).toBe(202);
    // Queued: the failure names its restart as it is now.
    expect((await get(`/api/executions/${failed.id}`, 'victor')).body.restartedAs).toEqual({ id: restarted.body.id, status: 'STARTING' });
    await node('api-restarted');
    expect((await ns.waitForEnd(restarted.body.id, { timeoutMs: 30_000 })).status).toBe('COMPLETED');

    const failures = (await get('/api/executions?status=FAILED', 'victor')).body as { id: number; restartedAs: unknown }[];
    expect(failures.map((e) => [e.id, e.restartedAs])).toEqual([
      [open.id, null],
      [failed.id, { id: restarted.body.id, status: 'COMPLETED' }],
    ]);
    const all = (await get('/api/executions?steps=1')).body as { id: number; restartedAs: unknown }[];
    expect(all.map((e) => [e.id, e.restartedAs])).toEqual([
      [restarted.body.id, null],
      [open.id, null],
      [failed.id, { id: restarted.body.id, status: 'COMPLETED' }],
    ]);
    expect((await get(`/api/executions/${failed.id}`)).body).toMatchObject({ status: 'FAILED', restartedAs: { id: restarted.body.id, status: 'COMPLETED' } });
    expect((await get(`/api/executions/${restarted.body.id}`)).body).toMatchObject({ status: 'COMPLETED', restartedAs: null });

    const spec = (await send('GET', '/api/openapi.json')).body;
    for (const name of ['Execution', 'ExecutionDetail']) {
      expect(spec.components.schemas[name].properties.restartedAs).toMatchObject({
        type: ['object', 'null'], required: ['id', 'status'], description: expect.stringContaining('newest later execution'),
      });
    }
    expect(spec.components.schemas.ExecutionDetail.required).toContain('restartedAs');
  });

  it('shows partitions under their manager step, the ExecutionContexts, and the summary the job records', async () => {
    const { ns, get } = await setup('api-detail');
    const done = await ns.run('partitioned-count', { items: 40, grid: 4, tag: 'parts' });
    const detail = (await get(`/api/executions/${done.id}`)).body;
    expect(detail.steps).toHaveLength(1);
    const [manager] = detail.steps;
    expect(manager).toMatchObject({ name: 'count', status: 'COMPLETED' });
    expect(manager.partitions.map((p: { name: string }) => p.name).sort()).toEqual([0, 1, 2, 3].map((i) => `count:partition${i}`));
    expect(manager.partitions.map((p: { context: { from: number } }) => p.context.from).sort((a: number, b: number) => a - b)).toEqual([1, 11, 21, 31]);
    expect(manager.partitions.reduce((n: number, p: { writeCount: number }) => n + p.writeCount, 0)).toBe(40);
    // import-csv's summary(): the rows it rejected, and why.
    const input = join(mkdtempSync(join(tmpdir(), 'nightshift-api-')), 'people.csv');
    writeFileSync(input, 'id,name,email,amount\n1,Ann,ann@x.org,1.5\nx,Bob,bob@x.org,2\n3,Cy,cy-at-x.org,3\n4,Di,di@x.org,4\n');
    const imported = await ns.run('import-csv', { input });
    const details = (await get(`/api/executions/${imported.id}`)).body;
    expect(details).toMatchObject({
      status: 'COMPLETED',
      skips: { read: 0, process: 2, write: 0 },
      summary: { rejected: 2, firstRejects: [{ line: 3, reason: 'id "x" is not an integer' }, { line: 4, reason: 'email "cy-at-x.org" lacks @' }] },
    });
    expect(details.steps.map((st: { name: string }) => st.name)).toEqual(['prepare-tables', 'import']);
  });

  it("gives each step's progress; a partitioned step's is its partitions' sum, and nothing is counted twice", async () => {
    const { ns, get } = await setup('api-progress');
    type Progress = { unit: string; done: number; total: number | null } | null;
    type Step = { name: string; readCount: number; progress: Progress; partitions?: Step[] };
    // A plain job: done of total items, as of the last commit; a failed run, then its restart.
    const failed = await ns.run('count', { items: 50, chunk: 10, tag: 'progress', failAt: 27 });
    expect(failed.status).toBe('FAILED');
    expect((await get(`/api/executions/${failed.id}`)).body.steps[0].progress).toEqual({ unit: 'items', done: 20, total: 50 });
    const restarted = await ns.restart(failed.id);
    const plain = (await get(`/api/executions/${restarted.id}`, 'victor')).body;
    expect(plain.steps.map((st: Step) => [st.name, st.progress])).toEqual([['count', { unit: 'items', done: 50, total: 50 }]]);
    // The list (steps=1, the CLI shape) carries the same.
    const listed = (await get('/api/executions?job=count&steps=1')).body as { id: number; steps: Step[] }[];
    expect(listed.find((e) => e.id === restarted.id)!.steps[0].progress).toEqual({ unit: 'items', done: 50, total: 50 });
    // A tasklet records none.
    const noopRun = await ns.run('noop');
    expect((await get(`/api/executions/${noopRun.id}`)).body.steps[0].progress).toBeNull();

    // A partitioned job: 4 partitions of 25; the manager's progress sums them once.
    const parts = await ns.run('partitioned-count', { items: 100, grid: 4, tag: 'progress-parts' });
    const detail = (await get(`/api/executions/${parts.id}`)).body;
    const [manager] = detail.steps as Step[];
    expect(manager.partitions!.map((p) => p.progress)).toEqual(Array(4).fill({ unit: 'items', done: 25, total: 25 }));
    expect(manager.progress).toEqual({ unit: 'items', done: 100, total: 100 });
    expect(manager.readCount).toBe(100);
    // Flat, as the list and the live events give it: the manager's sum, and each partition's own.
    const flat = ((await get('/api/executions?job=partitioned-count&steps=1')).body as { id: number; steps: Step[] }[]).find((e) => e.id === parts.id)!;
    expect(flat.steps.find((st) => st.name === 'count')!.progress).toEqual({ unit: 'items', done: 100, total: 100 });
    expect(flat.steps.filter((st) => st.name !== 'count').map((st) => st.progress)).toEqual(Array(4).fill({ unit: 'items', done: 25, total: 25 }));
    // The metrics count the partitioned job's execution once.
    expect(String((await get('/metrics')).body)).toContain('nightshift_executions{job="partitioned-count",status="COMPLETED"} 1\n');
  });

  it('adds, pauses, resumes, fires now, lists the firings of and removes schedules; a paused one has no next fire time', async () => {
    const { ns, get, send, post, node, audit } = await setup('api-schedules');
    const put = (name: string, body: unknown) => send('PUT', `/api/schedules/${name}`, { body });
    const created = await put('nightly', { job: 'count', cron: '0 0 2 * * ?', tz: 'Europe/Paris', params: { items: 5 } });
    expect(created).toMatchObject({ status: 201, body: { name: 'nightly', job: 'count', paused: false, params: { items: 5 }, source: 'runtime' } });
    expect(created.body.nextFireTime).toMatch(/^\d{4}-\d\d-\d\dT0[01]:00:00\.000Z$/);
    expect((await put('nightly', { job: 'count', cron: '0 0 2 * * ?', tz: 'Europe/Paris', params: { items: 6 } })).status).toBe(200);
    expect(await put('bad', { job: 'count', cron: '0 61 * * * ?' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/minute/) } });
    expect(await put('bad', { job: 'count', every: 5 })).toMatchObject({ status: 400, body: { error: 'the body has an unknown property every' } });
    expect((await get('/api/schedules', 'victor')).body).toEqual([expect.objectContaining({ name: 'nightly', paused: false })]);
    const paused = await post('/api/schedules/nightly/pause');
    expect(paused.body).toMatchObject({ paused: true, nextFireTime: null });
    expect((await get('/api/schedules/nightly')).body).toMatchObject({ paused: true, nextFireTime: null });
    const resumed = await post('/api/schedules/nightly/resume');
    expect(resumed.body.nextFireTime).toMatch(/T0[01]:00:00\.000Z$/);
    await node('api-sched', { scheduler: false });
    const fired = await post('/api/schedules/nightly/trigger');
    expect(fired).toMatchObject({ status: 202, body: { jobName: 'count', status: 'STARTING', parameters: { items: 6 } } });
    expect((await ns.waitForEnd(fired.body.id, { timeoutMs: 30_000 })).status).toBe('COMPLETED');
    const firings = (await get('/api/schedules/nightly/firings')).body;
    expect(firings).toEqual([expect.objectContaining({ trigger: 'nightly', outcome: 'manual', executionId: fired.body.id, detail: 'fired now by alice' })]);
    expect(firings[0].fireTime).toBe(fired.body.parameters.fireTime);
    expect((await get('/api/firings')).body).toEqual(firings);
    expect((await get(`/api/schedules/nightly/firings?before=${encodeURIComponent(firings[0].fireTime)}`)).body).toEqual([]);
    const after = new Date(Date.parse(firings[0].fireTime) + 1).toISOString();
    expect((await get(`/api/schedules/nightly/firings?before=${after}`)).body).toEqual(firings);
    expect(await get('/api/schedules/nightly/firings?before=soon')).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^before must be /) } });
    expect((await get('/api/schedules/nightly')).body.nextFireTime).toBe(resumed.body.nextFireTime);
    expect(await post('/api/schedules/nope/pause')).toMatchObject({ status: 404, body: { error: 'no schedule named nope' } });
    expect((await send('DELETE', '/api/schedules/nightly')).status).toBe(204);
    expect((await get('/api/schedules')).body).toEqual([]);
    expect((await send('DELETE', '/api/schedules/nightly')).status).toBe(404);
    expect((await audit()).filter((a) => a.action.startsWith('schedule.')).map((a) => [a.action, a.target, a.outcome]).reverse()).toEqual([
      ['schedule.put', 'schedule nightly', 'ok'], ['schedule.put', 'schedule nightly', 'ok'], ['schedule.put', 'schedule bad', 'refused'],
      ['schedule.put', 'schedule bad', 'refused'], ['schedule.pause', 'schedule nightly', 'ok'], ['schedule.resume', 'schedule nightly', 'ok'],
      ['schedule.trigger', 'schedule nightly', 'ok'], ['schedule.pause', 'schedule nope', 'refused'], ['schedule.remove', 'schedule nightly', 'ok'],
      ['schedule.remove', 'schedule nightly', 'refused'],
    ]);
  });

  it('adds one-shot and bounded schedules (at, startAt, endAt) and lists them; a bad time is a 400 naming the field', async () => {
    const { get, send } = await setup('api-sched-times');
    const put = (name: string, body: unknown) => send('PUT', `/api/schedules/${name}`, { body });
    expect(await put('launch', { job: 'noop', at: '2099-01-15T11:00:00+01:00' })).toMatchObject({
      status: 201, body: { name: 'launch', at: '2099-01-15T10:00:00.000Z', startAt: null, endAt: null, cron: null, everyMs: null, nextFireTime: '2099-01-15T10:00:00.000Z' },
    });
    expect(await put('window', { job: 'noop', everyMs: 3600_000, startAt: '2099-01-01T00:30:00Z', endAt: '2099-01-02T00:00:00Z' })).toMatchObject({
      status: 201, body: { at: null, startAt: '2099-01-01T00:30:00.000Z', endAt: '2099-01-02T00:00:00.000Z', nextFireTime: '2099-01-01T01:00:00.000Z' },
    });
    expect((await get('/api/schedules')).body.map((x: { name: string; at: string | null; endAt: string | null }) => [x.name, x.at, x.endAt])).toEqual([
      ['launch', '2099-01-15T10:00:00.000Z', null], ['window', null, '2099-01-02T00:00:00.000Z'],
    ]);
    expect(await put('bad', { job: 'noop', at: '2099-01-15T10:00:00' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^schedule bad: at must name its offset/) } });
    expect(await put('bad', { job: 'noop', at: '2099-01-15T10:00:00Z', everyMs: 1000 })).toMatchObject({ status: 400, body: { error: 'schedule bad: give one of cron, everyMs and at, not everyMs and at' } });
    expect(await put('bad', { job: 'noop', everyMs: 1000, startAt: '2099-01-02T00:00:00Z', endAt: '2099-01-01T00:00:00Z' })).toMatchObject({
      status: 400, body: { error: 'schedule bad: endAt 2099-01-01T00:00:00.000Z must be after startAt 2099-01-02T00:00:00.000Z' },
    });
    expect((await get('/api/schedules/bad')).status).toBe(404);
  });

  it('drains a node: it takes no more work, hands its running execution to another node, and stays up', async () => {
    const { ns, get, post, node, audit } = await setup('api-drain');
    const a = await node('drain-a', { concurrency: 1 });
    const submitted = await post('/api/jobs/count/executions', { params: { items: 300, chunk: 10, delayMs: 5, tag: 'drain' }, node: a.name });
    await waitFor(async () => (await ns.getExecution(submitted.body.id))?.steps[0]?.writeCount, 20_000, 'the execution to make progress on node a');
    const drained = await post(`/api/nodes/${encodeURIComponent(a.name)}/drain`);
    expect(drained).toMatchObject({ status: 202, body: { name: a.name, status: 'alive', draining: true } });
    // Handed over: the execution stops at a chunk boundary and is queued again for any node.
    await waitFor(async () => (await ns.getExecution(submitted.body.id))?.status === 'STOPPED', 20_000, 'the drained execution to stop');
    const b = await node('drain-b');
    const done = await ns.waitForEnd(submitted.body.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', node: b.name });
    // Node a is still a member, still draining, and takes nothing new.
    const late = await post('/api/jobs/noop/executions', {});
    expect((await ns.waitForEnd(late.body.id, { timeoutMs: 30_000 })).node).toBe(b.name);
    expect((await get('/api/nodes')).body).toContainEqual(expect.objectContaining({ name: a.name, status: 'alive', draining: true, running: [] }));
    expect(await post('/api/nodes/nobody/drain')).toMatchObject({ status: 404, body: { error: 'no live node named nobody' } });
    expect((await audit('node.drain')).map((x) => [x.actor, x.target, x.outcome])).toEqual([['alice', 'node nobody', 'refused'], ['alice', `node ${a.name}`, 'ok']]);
  });

  it('resumes a drained node (API and code): work that waited for it runs there, and its scheduler fires again', async () => {
    const { ns, get, post, node, audit } = await setup('api-resume');
    const a = await node('resume-a', { concurrency: 1 });
    const path = `/api/nodes/${encodeURIComponent(a.name)}`;
    const events: string[] = [];
    for (const ev of ['draining', 'resumed'] as const) a.on(ev, () => events.push(ev));
    const lastBeat = async () => Date.parse(((await get('/api/nodes')).body as { name: string; lastHeartbeat: string }[]).find((n) => n.name === a.name)!.lastHeartbeat);
    // Three heartbeats of node a (200 ms each), each with its probe, and several polls (100 ms) go by.
    const beatsGoBy = async () => {
      const from = await lastBeat();
      await waitFor(async () => (await lastBeat()) >= from + 600, 10_000, 'three heartbeats of node a');
    };
    /** Work for node a, which it does not take while it drains. */
    let runs = 0;
    const waitsForA = async () => {
      const e = await post('/api/jobs/noop/executions', { params: { 'run.id': ++runs }, node: a.name });
      expect(e.status).toBe(202);
      await beatsGoBy();
      expect(await ns.getExecution(e.body.id)).toMatchObject({ status: 'STARTING', node: null });
      return e.body.id as number;
    };

    expect(await post(`${path}/drain`)).toMatchObject({ status: 202, body: { draining: true } });
    await waitFor(() => events.includes('draining'), 10_000, 'node a to see the drain request');
    // A trigger due every 100 ms: node a was the one to fire it, and fires nothing while it drains.
    await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'tick', job: 'noop', everyMs: 100 });
    const first = await waitsForA();
    expect((await get('/api/schedules/tick/firings')).body).toEqual([]);
    const resumed = await post(`${path}/resume`);
    expect(resumed).toMatchObject({ status: 202, body: { name: a.name, status: 'alive', draining: false, drainRequestedAt: null } });
    expect(await ns.waitForEnd(first, { timeoutMs: 20_000 })).toMatchObject({ status: 'COMPLETED', node: a.name });
    await waitFor(async () => ((await get('/api/schedules/tick/firings')).body as { node: string; outcome: string }[]).some((f) => f.node === a.name && f.outcome === 'fired'),
      20_000, "node a's scheduler to fire the trigger again");
    expect(events).toEqual(['draining', 'resumed']);

    // The same from code, once more: a resumed node can be drained again.
    await a.drain();
    expect((await get('/api/nodes')).body).toContainEqual(expect.objectContaining({ name: a.name, draining: true }));
    const second = await waitsForA();
    await a.resume();
    expect(await ns.waitForEnd(second, { timeoutMs: 20_000 })).toMatchObject({ status: 'COMPLETED', node: a.name });
    // No stale probe undid either change: one event for each.
    await beatsGoBy();
    expect(events).toEqual(['draining', 'resumed', 'draining', 'resumed']);
    expect((await get('/api/nodes')).body).toContainEqual(expect.objectContaining({ name: a.name, draining: false }));

    expect(await post('/api/nodes/nobody/resume')).toMatchObject({ status: 404, body: { error: 'no live node named nobody' } });
    expect(await post(`${path}/resume`, undefined, 'victor')).toMatchObject({ status: 403, body: { error: 'token victor is a viewer: this needs the operator role' } });
    expect((await audit('node.resume')).map((x) => [x.actor, x.target, x.outcome])).toEqual([
      ['victor', `node ${a.name}`, 'forbidden'], ['alice', 'node nobody', 'refused'], ['alice', `node ${a.name}`, 'ok'],
    ]);
    const spec = (await get('/api/openapi.json')).body;
    expect(spec.paths['/api/nodes/{name}/resume'].post).toMatchObject({ summary: 'Resume a drained node', 'x-nightshift-role': 'operator' });
  });

  it('a node drained and resumed over and over follows each change once: no probe read before a change undoes it', async () => {
    const { ns, node } = await setup('api-resume-flap');
    // A heartbeat (and its probe, read on the heartbeat's thread) every 20 ms: some probes read
    // just before a change and arrive just after it.
    const a = await node('flap', { lease: { heartbeatMs: 20, leaseMs: 1500 } });
    const events: string[] = [];
    for (const ev of ['draining', 'resumed'] as const) a.on(ev, () => events.push(ev));
    const beats = async () => Number((await ns.db.query<{ t: number }>('SELECT last_heartbeat AS t FROM ns_node WHERE name = $1 AND status = $2', [a.name, 'alive']))[0].t);
    const probesGoBy = async () => {
      const from = await beats();
      await waitFor(async () => (await beats()) >= from + 60, 10_000, 'three heartbeats of the node');
    };
    const expected: string[] = [];
    for (let i = 0; i < 30; i++) {
      await a.drain();
      expected.push('draining');
      await probesGoBy();
      expect(events).toEqual(expected);
      await a.resume();
      expected.push('resumed');
      await probesGoBy();
      expect(events).toEqual(expected);
    }
    // Still a working node: it runs what is submitted.
    const e = await ns.submit('noop', {});
    expect(await ns.waitForEnd(e.id, { timeoutMs: 20_000 })).toMatchObject({ status: 'COMPLETED', node: a.name });
  });

  it('a drained node declared dead while it lives rejoins still drained, until it is resumed', async () => {
    const { ns, get, node } = await setup('api-resume-rejoin');
    const a = await node('rejoin', { concurrency: 1 });
    const events: string[] = [];
    for (const ev of ['draining', 'resumed', 'lost'] as const) a.on(ev, () => events.push(ev));
    await a.drain();
    const live = async () => ((await get('/api/nodes?all=true')).body as { name: string; status: string; draining: boolean; startedAt: string; lastHeartbeat: string }[])
      .filter((n) => n.name === a.name && n.status === 'alive');
    const [first] = await live();
    // Declared dead by a peer (its lease "ran out"): its next beat finds that out, and it joins again.
    await ns.db.execute(SQL.declareDeadNow, [Number((await ns.db.query<{ id: number }>(`SELECT id FROM ns_node WHERE name = $1 AND status = 'alive'`, [a.name]))[0].id), 'test: declared dead']);
    await waitFor(() => events.includes('lost'), 10_000, 'node a to find itself declared dead');
    // Its new incarnation is asked to drain right after it registers (before its heartbeat starts).
    const again = await waitFor(async () => (await live()).find((n) => n.startedAt !== first.startedAt && n.draining), 10_000, 'node a to rejoin, drained');
    const e = await ns.submit('noop', { 'run.id': 1 }, { node: a.name });
    // Several of its heartbeats (200 ms), each with its probe, go by: it stays drained.
    const from = Date.parse(again.lastHeartbeat);
    await waitFor(async () => Date.parse((await live())[0].lastHeartbeat) >= from + 600, 10_000, 'three heartbeats of node a');
    expect(await ns.getExecution(e.id)).toMatchObject({ status: 'STARTING', node: null });
    expect(events).toEqual(['draining', 'lost']);
    await a.resume();
    expect(await ns.waitForEnd(e.id, { timeoutMs: 20_000 })).toMatchObject({ status: 'COMPLETED', node: a.name });
    expect(events).toEqual(['draining', 'lost', 'resumed']);
  });

  it('streams execution and node changes as server-sent events, from one poll for all clients', async () => {
    const { ns, app, node } = await setup('api-events', { eventsPollMs: 100 });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const clients = await Promise.all([0, 1].map(() => openEvents(`${base}/api/events`, SECRET.victor)));
    try {
      await Promise.all(clients.map((c) => c.next('ready')));
      const done = await ns.run('count', { items: 20, chunk: 10, tag: 'sse' });
      for (const c of clients) {
        const e = await c.next('execution', (d) => d.id === done.id && d.status === 'COMPLETED');
        expect(e).toMatchObject({ jobName: 'count', steps: [{ name: 'count', writeCount: 20 }] });
      }
      const n = await node('sse-node');
      expect(await clients[0].next('node', (d) => d.name === n.name)).toMatchObject({ status: 'alive', draining: false });
      await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'sse', job: 'noop', everyMs: 3_600_000 });
      expect(await clients[1].next('schedule', (d) => d.name === 'sse')).toMatchObject({ job: 'noop', paused: false });
    } finally {
      for (const c of clients) c.close();
      await app.close();
    }
  });

  it('lists schedules, and serves Prometheus metrics counted from the repository', async () => {
    const { ns, get, node } = await setup('api-metrics');
    await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'nightly', job: 'count', cron: '0 0 2 * * ?', params: { items: 5 } });
    expect((await get('/api/schedules')).body).toEqual([expect.objectContaining({ name: 'nightly', job: 'count', cron: '0 0 2 * * ?', paused: false })]);
    await ns.run('count', { items: 5, tag: 'm1' });
    await ns.run('count', { items: 5, tag: 'm2' });
    await ns.run('count', { items: 5, tag: 'm3', failAt: 3 });
    const scrape = async () => {
      const metrics = await get('/metrics', 'victor');
      expect(metrics.status).toBe(200);
      return String(metrics.body);
    };
    let text = await scrape();
    expect(text).toContain('nightshift_executions{job="count",status="COMPLETED"} 2');
    expect(text).toContain('nightshift_executions{job="count",status="FAILED"} 1');
    expect(text).toMatch(/^nightshift_nodes\{status="alive"\} 0$/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    // Nothing waits for a node; then a submitted execution does, longer with every scrape, until a node takes it.
    const waited = (t: string) => Number(/^nightshift_oldest_queued_seconds (\S+)$/m.exec(t)![1]);
    expect(waited(text)).toBe(0);
    const queued = await ns.submit('count', { items: 1, tag: 'waits' });
    const first = await waitFor(async () => waited(await scrape()) || undefined, 10_000, 'the queued execution to show its wait');
    await waitFor(async () => waited(await scrape()) > first || undefined, 10_000, 'the wait to grow');
    const n = await node('metrics-node');
    await waitFor(async () => (await ns.getExecution(queued.id))?.status === 'COMPLETED' || undefined, 20_000, 'the node to run it');
    text = await scrape();
    expect(waited(text)).toBe(0);
    expect(text).toMatch(/^nightshift_nodes\{status="alive"\} 1$/m);
    expect(text).toContain(`nightshift_node_running_executions{node="${n.name}"} 0`);
    // Its heartbeat's age by the database's clock, under its lease while it beats; no drain yet.
    const age = Number(new RegExp(`^nightshift_node_heartbeat_age_seconds\\{node="${n.name}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(n.health().leaseMs / 1000);
    expect(text).toMatch(/^nightshift_nodes_draining 0$/m);
    await n.drain();
    expect(await scrape()).toMatch(/^nightshift_nodes_draining 1$/m);
    await n.shutdown();
    text = await scrape();
    expect(text).toMatch(/^nightshift_nodes\{status="left"\} 1$/m);
    expect(text).toMatch(/^nightshift_nodes_draining 0$/m);
    expect(text).not.toContain('nightshift_node_heartbeat_age_seconds{');
  });

  it('counts ended executions in a counter that only goes up: a prune does not lower it', async () => {
    const { ns, get } = await setup('api-ended');
    const scrape = async () => String((await get('/metrics', 'victor')).body);
    const ended = (text: string, job: string, status: string) =>
      Number(new RegExp(`^nightshift_executions_ended_total\\{job="${job}",status="${status}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    await ns.run('count', { items: 5, tag: 'e1' });
    const failed = await ns.run('count', { items: 5, tag: 'e2', failAt: 3 });
    let text = await scrape();
    expect(text).toContain('# TYPE nightshift_executions_ended_total counter');
    expect([ended(text, 'count', 'COMPLETED'), ended(text, 'count', 'FAILED')]).toEqual([1, 1]);
    // Every ended status of a job is there before the first such end, so that increase() sees it.
    expect([ended(text, 'count', 'STOPPED'), ended(text, 'count', 'ABANDONED'), ended(text, 'count', 'UNKNOWN')]).toEqual([0, 0, 0]);
    // A restart that completes ends a new execution; the failed one stays counted as FAILED.
    expect((await ns.restart(failed.id)).status).toBe('COMPLETED');
    await ns.run('noop');
    text = await scrape();
    expect([ended(text, 'count', 'COMPLETED'), ended(text, 'count', 'FAILED'), ended(text, 'noop', 'COMPLETED')]).toEqual([2, 1, 1]);

    // Prune everything: the gauge of executions in the repository falls, the counter does not.
    const pruned = await pruneHistory(ns.db, { olderThanMs: 0, includeRestartable: true });
    expect(pruned.executions).toBe(4);
    text = await scrape();
    expect(text).not.toMatch(/^nightshift_executions\{/m);
    expect([ended(text, 'count', 'COMPLETED'), ended(text, 'count', 'FAILED'), ended(text, 'noop', 'COMPLETED')]).toEqual([2, 1, 1]);
    await ns.run('count', { items: 5, tag: 'e3', failAt: 2 });
    text = await scrape();
    expect([ended(text, 'count', 'COMPLETED'), ended(text, 'count', 'FAILED')]).toEqual([2, 2]);
    expect(text).toContain('nightshift_executions{job="count",status="FAILED"} 1');
  });
});

/** A server-sent-events client: waits for the next event of a kind whose data matches. */
async function openEvents(url: string, secret: string) {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { authorization: `Bearer ${secret}` }, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const events: { event: string; data: Record<string, unknown> }[] = [];
  let buffer = '';
  void (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      }
    } catch {
      // closed
    }
  })();
  return {
    next: (event: string, match: (d: Record<string, unknown>) => boolean = () => true) =>
      waitFor(() => events.find((e) => e.event === event && match(e.data))?.data, 20_000, `a ${event} event`),
    close: () => controller.abort(),
  };
}
