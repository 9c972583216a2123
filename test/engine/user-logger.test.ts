/**
 * A logger of the user's own (the `logger` option of createNightshift and startNode): the
 * records Nightshift writes reach it with the passwords of URLs hidden, as they do with
 * Nightshift's own logger, whether the URL is in the message, a field, or an error (its message,
 * stack and cause); the user's own calls to the same logger are not touched, its bindings and
 * destination stay, and its level, as it is at each call, is the one that counts. A real pino
 * logger writing to memory, real SQLite and PostgreSQL.
 */
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/cluster/node.ts';
import { startNode } from '../../src/cluster/node.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { redactingLogger, silentLogger } from '../../src/core/logger.ts';
import { redactArgs, redactValue } from '../../src/core/redact.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { backends, PG_BASE } from '../support/backends.ts';
import { itWhen } from '../support/skip.ts';
import { partitionedCount } from '../../examples/nightshift.config.ts';

const SECRET = 'Hunter2-db-Pa55';
const LEAKY_URL = `postgres://loader:${SECRET}@db.example.com:5432/warehouse`;

/** A user's pino logger whose lines are kept in memory. */
function userLogger(level = 'info') {
  const lines: string[] = [];
  const logger = pino({ level, base: { app: 'mine' } }, { write: (line: string) => void lines.push(line) });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, records, text: () => lines.join('') };
}

/** Logs where it reads from, then fails with the URL, password and all, in its error. */
const leaky = defineJob({
  name: 'leaky',
  steps: (s) => [
    s.tasklet({
      name: 'load',
      tasklet: ({ log }) => {
        log.info({ source: LEAKY_URL }, `reading ${LEAKY_URL}`);
        throw new Error(`cannot load from ${LEAKY_URL}`);
      },
    }),
  ],
});

const fine = defineJob({ name: 'fine', params: { run: p.int() }, steps: (s) => [s.tasklet({ name: 'noop', tasklet: () => undefined })] });

/** Connects to the test PostgreSQL with a password, to a database that does not exist, and says so with the URL. */
const unreachable = defineJob({
  name: 'unreachable',
  steps: (s) => [
    s.tasklet({
      name: 'connect',
      tasklet: async () => {
        const url = new URL(PG_BASE);
        url.password = SECRET;
        url.pathname = '/ns_no_such_database';
        url.search = '';
        const client = new pg.Client({ connectionString: url.toString() });
        try {
          await client.connect();
        } catch (err) {
          throw new Error(`connecting to ${url.toString()} failed: ${(err as Error).message}`, { cause: err });
        } finally {
          await client.end().catch(() => undefined);
        }
      },
    }),
  ],
});

const jobs = [leaky, fine, unreachable, partitionedCount];

describe.each(backends())('a user-supplied logger ($name)', (backend) => {
  const opened: (Nightshift | ClusterNode)[] = [];
  afterAll(async () => {
    for (const x of opened.reverse()) await ('shutdown' in x ? x.shutdown() : x.close());
    await backend.cleanup();
  });
  const operator = async (logger: pino.Logger) => {
    const ns = await createNightshift({ db: backend.freshUrl('userlog'), jobs, logger });
    opened.push(ns);
    return ns;
  };

  it('gets a failing job\'s lines with the URL password hidden; the user\'s own lines are untouched', async () => {
    const user = userLogger();
    const ns = await operator(user.logger);
    const done = await ns.run('leaky');
    expect(done.status).toBe('FAILED');
    const text = user.text();
    expect(text).not.toContain(SECRET);
    const hidden = 'postgres://loader:***@db.example.com:5432/warehouse';
    const records = user.records();
    // The tasklet's own line through the step's logger: message and field, with the user's base and the step's bindings.
    expect(records).toContainEqual(expect.objectContaining({ app: 'mine', execution: done.id, step: 'load', source: hidden, msg: `reading ${hidden}` }));
    // The engine's line about the failure: its message, and the error with message and stack.
    const failed = records.find((r) => String(r.msg).startsWith('step load failed'));
    expect(failed, text).toMatchObject({ level: 50, execution: done.id, step: 'load', msg: `step load failed: cannot load from ${hidden}` });
    expect(failed!.err).toMatchObject({ type: 'Error', message: `cannot load from ${hidden}` });
    expect(String((failed!.err as { stack: string }).stack)).toContain(`Error: cannot load from ${hidden}`);
    // The user's own calls to their logger (and to ns.log's underlying instance) are theirs: nothing hidden.
    user.logger.info({ mine: LEAKY_URL }, `my own ${LEAKY_URL}`);
    const own = user.records().at(-1)!;
    expect(own).toMatchObject({ mine: LEAKY_URL, msg: `my own ${LEAKY_URL}` });
    // ns.log is Nightshift's view of it, which hides.
    ns.log.warn(new Error(`via ns.log ${LEAKY_URL}`));
    expect(user.lines.at(-1)).not.toContain(SECRET);
    expect(user.records().at(-1)).toMatchObject({ level: 40, msg: `via ns.log ${hidden}` });
  });

  it("binds each of a partition's keys once: the execution and job of its lines are not repeated", async () => {
    const user = userLogger();
    const ns = await operator(user.logger);
    const done = await ns.run('partitioned-count', { items: 40, grid: 2, tag: `keys-${backend.name}` });
    expect(done.status).toBe('COMPLETED');
    const lines = user.lines.filter((l) => l.includes('"step":"count:partition'));
    expect(lines.some((l) => l.includes('started on')), user.text()).toBe(true);
    for (const line of lines) {
      for (const key of ['execution', 'job', 'step']) expect(line.split(`"${key}":`).length - 1, line).toBe(1);
    }
  });

  it('decides by the user\'s level, as it is at each call', async () => {
    const user = userLogger('warn');
    const ns = await operator(user.logger);
    const quiet = await ns.run('fine', { run: 1 });
    expect(quiet.status).toBe('COMPLETED');
    expect(user.lines).toEqual([]);
    await ns.run('leaky');
    const levels = user.records().map((r) => r.level as number);
    expect(levels.length).toBeGreaterThan(0);
    expect(levels.every((l) => l >= 40)).toBe(true);
    expect(user.text()).not.toContain(SECRET);
    // Lowered after Nightshift took the logger: the change counts at once.
    user.logger.level = 'info';
    const loud = await ns.run('fine', { run: 2 });
    expect(user.records()).toContainEqual(expect.objectContaining({ level: 30, execution: loud.id, msg: expect.stringMatching(/^job fine execution \d+ started/) }));
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: a node on the cluster repository')('hides the password of a failed connection\'s URL in what a node logs', async () => {
    const user = userLogger();
    const ns = await operator(silentLogger);
    // The repository URL carries a password too (the test server trusts local connections, so any will do).
    const db = new URL(ns.db.connectUrl);
    db.password = SECRET;
    const node = await startNode({ db: db.toString(), jobs, name: 'userlog-node', pollMs: 100, scheduler: false, logger: user.logger });
    opened.push(node);
    const submitted = await ns.submit('unreachable');
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('FAILED');
    const text = user.text();
    expect(text).toMatch(/connecting to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/ns_no_such_database failed: database \\"ns_no_such_database\\" does not exist/);
    expect(user.records()).toContainEqual(expect.objectContaining({ node: 'userlog-node', execution: submitted.id, level: 50 }));
    expect(text).not.toContain(SECRET);
  });
});

describe('redactingLogger', () => {
  it('leaves the user\'s logger as it was and wraps it once', () => {
    const user = userLogger();
    const before = Reflect.ownKeys(user.logger).length;
    const view = redactingLogger(user.logger);
    expect(redactingLogger(view)).toBe(view);
    expect(redactingLogger(silentLogger)).toBe(silentLogger);
    expect(Reflect.ownKeys(user.logger)).toHaveLength(before);
    view.child({ node: 'n1', db: LEAKY_URL }).info({ n: 1 }, 'child');
    user.logger.child({ db: LEAKY_URL }).info('user child');
    const [child, own] = user.records();
    expect(child).toMatchObject({ node: 'n1', db: 'postgres://loader:***@db.example.com:5432/warehouse', n: 1, msg: 'child' });
    expect(own).toMatchObject({ db: LEAKY_URL, msg: 'user child' });
  });

  it('hides URL passwords through a logger-like object that is not pino (no levels)', () => {
    const lines: unknown[][] = [];
    const record = (...args: unknown[]) => void lines.push(args);
    const plain = { trace: record, debug: record, info: record, warn: record, error: record, fatal: record, child: () => plain };
    const view = redactingLogger(plain as unknown as pino.Logger);
    view.child({ node: 'n1' }).warn({ db: LEAKY_URL }, `cannot reach ${LEAKY_URL}`);
    expect(JSON.stringify(lines)).not.toContain(SECRET);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines)).toContain('postgres://loader:***@db.example.com');
  });

  it('copies nothing when there is nothing to hide, and keeps an error\'s class when there is', () => {
    const record = { execution: 3, params: { day: '2026-12-06', n: [1, 2, 'x'] }, at: new Date(), err: new TypeError('plain') };
    expect(redactValue(record)).toBe(record);
    const args: [object, string] = [record, 'message'];
    expect(redactArgs(args)).toBe(args);
    const cause = new RangeError(`inner ${LEAKY_URL}`);
    const err = Object.assign(new TypeError(`outer ${LEAKY_URL}`, { cause }), { code: 'E42' });
    const hidden = redactValue({ err }) as { err: TypeError & { code: string } };
    expect(hidden.err).toBeInstanceOf(TypeError);
    expect(hidden.err.message).toBe('outer postgres://loader:***@db.example.com:5432/warehouse');
    expect(hidden.err.stack).not.toContain(SECRET);
    expect(hidden.err.code).toBe('E42');
    expect(hidden.err.cause).toBeInstanceOf(RangeError);
    expect((hidden.err.cause as Error).message).not.toContain(SECRET);
    // The original is untouched.
    expect(err.message).toContain(SECRET);
  });
});
