/**
 * The HTTP API under load (issue 15): a `nightshift node` runs a long `count` job (PostgreSQL,
 * chunk 100) while a `nightshift serve` process answers 200 clients (autocannon, keep-alive,
 * each with a viewer token) for a fixed time: the executions list, one execution's details, the
 * nodes and the schedules, 50 clients each. Reported: each route's latency (p50, p99, max) and
 * throughput, and the job's own throughput (items written per second, read from its step's
 * checkpoints) in a window before the load, during it, and after it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { ROOT, startNode, type Proc } from './lib/proc.ts';
import { dropSchemas, int, note, PG, schemaName, schemaUrl, sleep, table, until } from './lib/util.ts';

const TOKEN = 'bench-viewer-0a8f3c9d2e6b7f14';
const OPERATOR = 'bench-operator-5c1d9e0f7a2b3c48';
const TOKENS = `bench:viewer:${TOKEN},ops:operator:${OPERATOR}`;

/** Starts `nightshift serve` on a free port; resolves with its base URL. */
async function startServe(url: string): Promise<{ proc: Proc; base: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/nightshift.js'), 'serve', '--port', '0', '--db', url, '--config', 'examples/nightshift.config.ts'], {
    cwd: ROOT,
    env: { ...process.env, NIGHTSHIFT_API_TOKENS: TOKENS, NIGHTSHIFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4096)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = await until('serve listening', async () => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000, 50);
  const proc: Proc = {
    child, pid: child.pid!, output: () => out, exited,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return { proc, base };
}

interface RouteResult {
  route: string;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
}

function load(base: string, route: string, connections: number, seconds: number): Promise<RouteResult> {
  return new Promise((resolve, reject) => {
    autocannon({
      url: `${base}${route}`,
      connections,
      duration: seconds,
      headers: { authorization: `Bearer ${TOKEN}` },
    }, (err, r) => {
      if (err) return reject(err);
      resolve({
        route, requests: r.requests.total, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, non2xx: r.non2xx,
        errors: r.errors + r.timeouts,
      });
    });
  });
}

/** The job's items written per second over `ms`, from its step's committed counters. */
async function rate(db: pg.Client, executionId: number, ms: number): Promise<number> {
  const written = async () => Number((await db.query('SELECT coalesce(sum(write_count), 0) AS n FROM ns_step_execution WHERE job_execution_id = $1', [executionId])).rows[0].n);
  const t0 = performance.now();
  const w0 = await written();
  await sleep(ms);
  const w1 = await written();
  return ((w1 - w0) * 1000) / (performance.now() - t0);
}

export async function benchApiLoad(o: { seconds: number; clients: number; windowSeconds: number }): Promise<string[]> {
  const schema = schemaName('api');
  const url = schemaUrl(schema);
  const node = startNode(url, 'api-node', ['--concurrency', '2']);
  let serve: { proc: Proc; base: string } | undefined;
  const db = new pg.Client({ connectionString: PG, options: `-c search_path=${schema}` });
  db.on('error', () => undefined);
  try {
    serve = await startServe(url);
    await db.connect();
    const { base } = serve;
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status >= 300) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as { id: number };
    };
    // History for the list and details to read: a few hundred finished executions.
    for (let i = 0; i < 300; i++) await post('/api/jobs/count/executions', { params: { items: 10, tag: `history-${i}` } });
    await until('the history to run', async () => Number((await db.query(`SELECT count(*) AS n FROM ns_job_execution WHERE status = 'COMPLETED'`)).rows[0].n) === 300, 120_000, 200);
    const job = await post('/api/jobs/count/executions', { params: { items: 1_000_000_000, chunk: 100, tag: 'load' } });
    await until('the long job to make progress', async () => Number((await db.query('SELECT coalesce(sum(write_count), 0) AS n FROM ns_step_execution WHERE job_execution_id = $1', [job.id])).rows[0].n) > 0, 60_000, 100);
    note(`job ${job.id} runs; measuring ${o.windowSeconds} s without load`);
    const before = await rate(db, job.id, o.windowSeconds * 1000);
    note(`${int(before)} items/s; now ${o.clients} clients for ${o.seconds} s`);
    const per = Math.floor(o.clients / 4);
    const routes = ['/api/executions?limit=20', `/api/executions/${job.id}`, '/api/nodes', '/api/schedules'];
    const during = rate(db, job.id, o.seconds * 1000);
    const results = await Promise.all(routes.map((r) => load(base, r, per, o.seconds)));
    const duringRate = await during;
    note(`${int(duringRate)} items/s under load; ${o.windowSeconds} s more without`);
    const after = await rate(db, job.id, o.windowSeconds * 1000);
    await post(`/api/executions/${job.id}/stop`, {});
    const all = results.reduce((n, r) => n + r.requests, 0);
    const rps = results.reduce((n, r) => n + r.rps, 0);
    return [
      `## HTTP API under load: ${o.clients} clients for ${o.seconds} s while a job runs (PostgreSQL)`,
      '',
      ...table(['route (viewer token)', 'clients', 'requests', 'req/s', 'latency p50', 'latency p99', 'max', 'non-2xx', 'errors'],
        results.map((r) => [`\`GET ${r.route.replace(String(job.id), 'ID')}\``, per, int(r.requests), int(r.rps), `${r.p50} ms`, `**${r.p99} ms**`, `${r.max} ms`, r.non2xx, r.errors])),
      `| all | ${per * 4} | ${int(all)} | ${int(rps)} | | | | | |`,
      '',
      ...table(['the job (`count`, chunk 100, on a `nightshift node`)', 'items written/s'], [
        [`${o.windowSeconds} s before the load`, int(before)],
        [`during the ${o.seconds} s of load`, `**${int(duringRate)}** (${((duringRate / ((before + after) / 2)) * 100).toFixed(0)} % of the mean of before and after)`],
        [`${o.windowSeconds} s after the load`, int(after)],
      ]),
      '',
      'One `nightshift serve` process (authentication, Host check, audit, everything on) and one `nightshift node` (concurrency 2), ' +
        'on one PostgreSQL; autocannon runs in the benchmark process. All of them share the 2-core host, so the load takes CPU from the ' +
        'job as well as database time. The repository holds 300 finished executions besides the job. The executions list reads one index ' +
        'range (newest first, 20 rows); the details read the execution, its steps and partitions.',
    ];
  } finally {
    await serve?.proc.stop();
    await node.stop();
    await db.end().catch(() => undefined);
    await dropSchemas(schema);
  }
}
