/**
 * The REST API and the Prometheus metrics (SPEC section 6) over a real repository, on both
 * backends: requests go through Fastify's router in-process; a node started here runs what the
 * API submits.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { startNode } from '../../src/cluster/node.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { backends } from '../support/backends.ts';

const jobs = [noop, count];

describe.each(backends())('HTTP API ($name)', (backend) => {
  const opened: Nightshift[] = [];
  afterAll(async () => {
    for (const ns of opened) await ns.close();
    await backend.cleanup();
  });
  const setup = async (label: string) => {
    const url = backend.freshUrl(label);
    const ns = await createNightshift({ db: url, jobs, logger: silentLogger });
    opened.push(ns);
    const app = createHttpApi(ns);
    const get = async (url: string) => {
      const r = await app.inject({ method: 'GET', url });
      return { status: r.statusCode, body: r.headers['content-type']?.toString().startsWith('application/json') ? r.json() : r.body };
    };
    const post = async (url: string, payload?: unknown, contentType = 'application/json') => {
      const body = payload === undefined ? '' : typeof payload === 'string' ? payload : JSON.stringify(payload);
      const r = await app.inject({ method: 'POST', url, headers: contentType ? { 'content-type': contentType } : {}, payload: body });
      return { status: r.statusCode, body: r.json() };
    };
    return { url, ns, app, get, post };
  };

  it('lists jobs, and executions with their steps in the CLI JSON shapes', async () => {
    const { ns, get } = await setup('api-read');
    const done = await ns.run('count', { items: 30, chunk: 10, tag: 'api' });
    expect((await get('/api/jobs')).body).toContainEqual(expect.objectContaining({
      name: 'count',
      parameters: expect.objectContaining({ items: { type: 'int', default: 1000, required: false, identifying: true } }),
    }));
    const list = await get('/api/executions?job=count&status=COMPLETED');
    expect(list.status).toBe(200);
    expect(list.body).toEqual([expect.objectContaining({ id: done.id, jobName: 'count', status: 'COMPLETED', parameters: expect.objectContaining({ items: 30, tag: 'api' }) })]);
    expect((await get('/api/executions?status=FAILED')).body).toEqual([]);
    // steps=1: each execution with its steps, newest first.
    const second = await ns.run('noop');
    const withSteps = await get('/api/executions?steps=1');
    expect(withSteps.body.map((e: { id: number; steps: { name: string; writeCount: number }[] }) => [e.id, e.steps.map((s) => [s.name, s.writeCount])]))
      .toEqual([[second.id, [['noop', 0]]], [done.id, [['count', 30]]]]);
    expect((await get('/api/executions')).body.every((e: object) => !('steps' in e))).toBe(true);
    expect(await get('/api/executions?steps=yes')).toEqual({ status: 400, body: { error: 'steps must be 1 or 0 (or true or false), got "yes"' } });
    const one = await get(`/api/executions/${done.id}`);
    expect(one.body).toMatchObject({ id: done.id, status: 'COMPLETED', steps: [{ name: 'count', status: 'COMPLETED', readCount: 30, writeCount: 30, commitCount: 4 }] });
    expect(one.body.endTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('answers bad input with 400 and unknown ids, jobs or routes with 404, naming what is wrong', async () => {
    const { get, post } = await setup('api-bad');
    expect(await get('/api/nope')).toEqual({ status: 404, body: { error: 'no route GET /api/nope' } });
    expect(await get('/api/executions?job=a&job=b')).toEqual({ status: 400, body: { error: 'query parameter job is given 2 times; give it once' } });
    expect(await get('/api/executions?limit=5000')).toEqual({ status: 400, body: { error: 'limit must be at most 1000, got 5000' } });
    expect(await post('/api/jobs/count/executions', [1])).toEqual({ status: 400, body: { error: 'the body must be a JSON object: { "params", "node" or "key" }' } });
    expect(await post('/api/jobs/count/executions', { node: { name: 'a' } })).toEqual({ status: 400, body: { error: 'node must be a string, got {"name":"a"}' } });
    expect(await get('/api/executions/42')).toEqual({ status: 404, body: { error: 'no execution with id 42' } });
    expect(await get('/api/executions/abc')).toEqual({ status: 400, body: { error: 'execution id must be a positive integer, got "abc"' } });
    expect(await get('/api/executions?limit=0')).toEqual({ status: 400, body: { error: 'limit must be a positive integer, got "0"' } });
    expect((await get('/api/executions?status=DONE')).body.error).toMatch(/^status must be one of STARTING, .* got "DONE"$/);
    expect(await post('/api/jobs/nope/executions', {})).toEqual({ status: 404, body: { error: 'unknown job "nope"' } });
    expect(await post('/api/jobs/count/executions', { params: { items: 'many' } })).toEqual({ status: 400, body: { error: 'job count: parameter items must be an integer, got "many"' } });
    expect((await post('/api/jobs/count/executions', { params: { itms: 5 } })).body.error).toMatch(/itms/);
    expect(await post('/api/executions/7/stop')).toEqual({ status: 404, body: { error: 'no execution with id 7' } });
    const malformed = await post('/api/jobs/count/executions', '{"params":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/^request body is not valid JSON: /);
  });

  it('takes POSTs only as JSON, so that other sites cannot send them through a browser', async () => {
    const { get, post } = await setup('api-csrf');
    const refused = { status: 415, body: { error: 'POST requests must have content-type application/json' } };
    expect(await post('/api/jobs/noop/executions', 'x', 'text/plain')).toEqual(refused);
    expect(await post('/api/jobs/noop/executions', 'params=1', 'application/x-www-form-urlencoded')).toEqual(refused);
    expect(await post('/api/executions/1/stop', undefined, '')).toEqual(refused);
    expect((await get('/api/executions')).body).toEqual([]);
    expect((await post('/api/jobs/noop/executions')).status).toBe(202);
  });

  it('submits to the cluster (202), a node runs it; a completed instance is refused with 409', async () => {
    const { url, ns, get, post } = await setup('api-submit');
    const node = await startNode({ db: url, jobs, name: `api-node-${backend.name}`, pollMs: 100, logger: silentLogger });
    try {
      const submitted = await post('/api/jobs/count/executions', { params: { items: 25, chunk: 10, tag: 'submitted' } });
      expect(submitted.status).toBe(202);
      expect(submitted.body).toMatchObject({ jobName: 'count', status: 'STARTING', steps: [] });
      const done = await ns.waitForEnd(submitted.body.id, { timeoutMs: 30_000 });
      expect(done).toMatchObject({ status: 'COMPLETED', node: `api-node-${backend.name}` });
      expect((await get(`/api/executions/${done.id}`)).body.steps[0]).toMatchObject({ writeCount: 25 });
      const again = await post('/api/jobs/count/executions', { params: { items: 25, chunk: 10, tag: 'submitted' } });
      expect(again.status).toBe(409);
      expect(again.body.error).toMatch(/COMPLETED|completed/);
      const nodes = await get('/api/nodes');
      expect(nodes.body).toContainEqual(expect.objectContaining({ name: `api-node-${backend.name}`, status: 'alive', jobs: ['noop', 'count'] }));
    } finally {
      await node.shutdown();
    }
  });

  it("stops a running execution and abandons it; what an execution's state refuses is 409", async () => {
    const { ns, post } = await setup('api-stop');
    const { execution, done } = await ns.start('count', { items: 2000, chunk: 10, delayMs: 2, tag: 'stop' });
    const stopped = await post(`/api/executions/${execution.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.id).toBe(execution.id);
    expect((await done).status).toBe('STOPPED');
    expect((await post(`/api/executions/${execution.id}/abandon`)).body).toMatchObject({ id: execution.id, status: 'ABANDONED' });
    const completed = await ns.run('noop');
    expect(await post(`/api/executions/${completed.id}/abandon`)).toEqual({ status: 409, body: { error: `execution ${completed.id} is COMPLETED and cannot be abandoned` } });
    const refusedStop = await post(`/api/executions/${completed.id}/stop`);
    expect(refusedStop.status).toBe(409);
    expect(refusedStop.body.error).toContain(String(completed.id));
  });

  it('lists schedules, and serves Prometheus metrics counted from the repository', async () => {
    const { url, ns, get } = await setup('api-metrics');
    await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'nightly', job: 'count', cron: '0 0 2 * * ?', params: { items: 5 } });
    expect((await get('/api/schedules')).body).toEqual([expect.objectContaining({ name: 'nightly', job: 'count', cron: '0 0 2 * * ?', paused: false })]);
    await ns.run('count', { items: 5, tag: 'm1' });
    await ns.run('count', { items: 5, tag: 'm2' });
    await ns.run('count', { items: 5, tag: 'm3', failAt: 3 });
    const scrape = async () => {
      const metrics = await get('/metrics');
      expect(metrics.status).toBe(200);
      return String(metrics.body);
    };
    let text = await scrape();
    expect(text).toContain('nightshift_executions{job="count",status="COMPLETED"} 2');
    expect(text).toContain('nightshift_executions{job="count",status="FAILED"} 1');
    expect(text).toMatch(/^nightshift_nodes\{status="alive"\} 0$/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    const node = await startNode({ db: url, jobs, name: `metrics-node-${backend.name}`, logger: silentLogger });
    try {
      text = await scrape();
      expect(text).toMatch(/^nightshift_nodes\{status="alive"\} 1$/m);
      expect(text).toContain(`nightshift_node_running_executions{node="metrics-node-${backend.name}"} 0`);
    } finally {
      await node.shutdown();
    }
    expect(await scrape()).toMatch(/^nightshift_nodes\{status="left"\} 1$/m);
  });
});
