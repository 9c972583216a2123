/**
 * The CLI's actions in the audit log: every command that acts records one entry, named as the
 * HTTP API names the same action, by `cli:USER@HOST` from `cli`; read-only commands record
 * nothing; an entry that cannot be written changes nothing but one line on stderr. Through the
 * real `nightshift` command, read back with listAudit and through `GET /api/audit`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { listAudit, type AuditRecord } from '../../src/repository/audit.ts';
import { openExistingDatabase } from '../../src/repository/open.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { PG_BASE, backends, waitFor } from '../support/backends.ts';
import { killAll, startNode } from '../support/node-procs.ts';
import { cliFor, query } from './run-cli.ts';

const [sqlite, postgres] = backends();
const ACTOR = `cli:${userInfo().username}@${hostname()}`;

afterAll(async () => {
  await killAll();
  await sqlite.cleanup();
  await postgres.cleanup();
});

/** The audit log, oldest first (a repository that is not there yet is refused, not created). */
async function auditLog(url: string): Promise<AuditRecord[]> {
  const db = await openExistingDatabase(url, { poolSize: 1 });
  try {
    return (await listAudit(db, { limit: 1000 })).records.reverse();
  } finally {
    await db.close();
  }
}

/** What an entry says, without its id and time. */
const summary = (a: AuditRecord) => [a.action, a.target, a.outcome];

/** Every entry is the CLI's: its actor, from `cli`, with no role nor HTTP status. */
function expectCliEntries(log: AuditRecord[]): void {
  for (const a of log) expect(a).toMatchObject({ actor: ACTOR, role: null, remote: 'cli', statusCode: null });
}

describe('the CLI in the audit log (sqlite)', () => {
  it('records each command that acts once, as the API names the action; a refused one as refused; read-only commands nothing', async () => {
    const url = sqlite.freshUrl('cliaudit');
    const cli = cliFor(url);
    expect((await cli.run(['run', 'noop', 'run.id=1'])).code).toBe(0);
    const submitted = await cli.json(['submit', 'noop', 'run.id=2']);
    expect((await cli.run(['abandon', String(submitted.id)])).code).toBe(0);
    expect((await cli.run(['restart', '1'])).code).toBe(2);
    expect((await cli.run(['stop', '1'])).code).toBe(2);
    expect((await cli.run(['drain', 'nosuch'])).code).toBe(2);
    for (const args of [['add', 'hourly', '--job', 'noop', '--every', '1h', 'run.id=3'], ['pause', 'hourly'], ['resume', 'hourly'], ['remove', 'hourly']]) {
      expect((await cli.run(['schedule', ...args])).code, args.join(' ')).toBe(0);
    }
    const file = join(mkdtempSync(join(tmpdir(), 'nightshift-cliaudit-')), 'launches.jsonl');
    writeFileSync(file, '{"job": "noop", "params": {"run.id": 4}}\n{"job": "nosuch"}\n');
    expect((await cli.run(['submit-many', file])).code).toBe(1);
    expect((await cli.run(['prune', '--older-than', '30d', '--dry-run'])).code).toBe(0);
    expect((await cli.run(['prune', '--older-than', '30d'])).code).toBe(0);

    const log = await auditLog(url);
    expectCliEntries(log);
    expect(log.map(summary)).toEqual([
      ['job.run', 'job noop', 'ok'],
      ['job.submit', 'job noop', 'ok'],
      ['execution.abandon', `execution ${submitted.id}`, 'ok'],
      ['execution.restart', 'execution 1', 'refused'],
      ['execution.stop', 'execution 1', 'refused'],
      ['node.drain', 'node nosuch', 'refused'],
      ['schedule.put', 'schedule hourly', 'ok'],
      ['schedule.pause', 'schedule hourly', 'ok'],
      ['schedule.resume', 'schedule hourly', 'ok'],
      ['schedule.remove', 'schedule hourly', 'ok'],
      ['job.submitMany', 'executions', 'ok'],
      ['history.prune', 'history', 'ok'],
    ]);
    // The details the API keeps for the same actions; a refusal's message is the CLI's error.
    expect(log[0].detail).toEqual({ params: { 'run.id': '1' }, execution: 1 });
    expect(log[1].detail).toEqual({ params: { 'run.id': '2' }, execution: submitted.id });
    expect(log[3].message).toBe('execution 1 of job noop is COMPLETED: a completed instance cannot be restarted');
    expect(log[4].message).toBe('execution 1 is not running (it is COMPLETED)');
    expect(log[5].message).toBe('no live node named nosuch');
    expect(log[6].detail).toMatchObject({ result: 'created', job: 'noop', everyMs: 3_600_000, params: { 'run.id': '3' } });
    expect(log[10].detail).toEqual({ items: 2, submitted: 1, failed: 1 });
    expect(log[11].detail).toMatchObject({ olderThanMs: 30 * 86_400_000, deleted: { executions: 0, steps: 0, instances: 0, nodes: 0 } });
    for (const a of log) expect(JSON.stringify(a)).not.toContain(url);

    for (const args of [['executions'], ['execution', '1'], ['nodes'], ['jobs'], ['schedule', 'list']]) {
      expect((await cli.run(args)).code, args.join(' ')).toBe(0);
    }
    expect((await cli.run(['schedule', 'history', 'hourly'])).code).toBe(2);
    expect(await auditLog(url)).toHaveLength(log.length);
  }, 120_000);

  it('records a run once, when it launches, not when it ends', async () => {
    const url = sqlite.freshUrl('cliaudit-launch');
    const cli = cliFor(url);
    const run = cli.spawn(['run', 'count', 'items=100000', 'chunk=50', 'delayMs=2', 'tag=launch']);
    const [launched] = await waitFor(async () => {
      const log = await auditLog(url).catch(() => []);
      return log.length ? log : undefined;
    }, 30_000, 'the run to be recorded');
    expect(run.child.exitCode).toBeNull();
    expect(launched).toMatchObject({ action: 'job.run', target: 'job count', outcome: 'ok', actor: ACTOR, detail: { params: { items: '100000', chunk: '50', delayMs: '2', tag: 'launch' }, execution: 1 } });
    expect((await cli.run(['stop', '1'])).code).toBe(0);
    expect((await run.exited).code).toBe(1);
    expect((await auditLog(url)).map(summary)).toEqual([['job.run', 'job count', 'ok'], ['execution.stop', 'execution 1', 'ok']]);
  }, 60_000);

  it('an entry that cannot be written changes nothing of the command but one line on stderr', async () => {
    const url = sqlite.freshUrl('cliaudit-fail');
    const cli = cliFor(url);
    expect((await cli.run(['run', 'noop'])).code).toBe(0);
    await query(url, "CREATE TRIGGER refuse_audit BEFORE INSERT ON ns_audit BEGIN SELECT RAISE(ABORT, 'the audit log is read-only'); END");
    const added = await cli.run(['schedule', 'add', 'hourly', '--job', 'noop', '--every', '1h']);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^schedule hourly added: job noop, every 1h; next fire time \S+\n$/);
    expect(added.stderr).toBe('nightshift: schedule.put was done but not recorded in the audit log: the audit log is read-only\n');
    // A command that failed says only its own error.
    const refused = await cli.run(['stop', '1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('nightshift: execution 1 is not running (it is COMPLETED)\n');
    expect(await auditLog(url)).toHaveLength(1);
  }, 60_000);
});

describe('the CLI in the audit log (postgres)', () => {
  it('drain, resume, stop, restart, schedule add and prune show in GET /api/audit, a refused restart as refused', async () => {
    const url = postgres.freshUrl('cliaudit');
    const cli = cliFor(url);
    expect((await cli.run(['run', 'noop'])).code).toBe(0);
    const node = startNode(url, 'auditor', { args: ['--heartbeat-ms', '200', '--lease-ms', '3000'] });
    await waitFor(() => /node auditor joined/.test(node.output()) || undefined, 30_000, 'the node to join');
    expect((await cli.run(['drain', 'auditor'])).code).toBe(0);
    expect((await cli.run(['resume', 'auditor'])).code).toBe(0);

    const submitted = await cli.json(['submit', 'count', 'items=3000', 'chunk=50', 'delayMs=2', 'tag=a']);
    await waitFor(async () => (await cli.json(['execution', String(submitted.id)])).status === 'STARTED' || undefined, 20_000, 'the node to run it');
    expect((await cli.run(['stop', String(submitted.id)])).code).toBe(0);
    await waitFor(async () => (await cli.json(['execution', String(submitted.id)])).status === 'STOPPED' || undefined, 20_000, 'the execution to stop');
    const restarted = await cli.json(['restart', String(submitted.id)]);
    expect(restarted.status).toBe('COMPLETED');
    expect((await cli.run(['restart', String(submitted.id)])).code).toBe(2);
    expect((await cli.run(['schedule', 'add', 'nightly', '--job', 'noop', '--cron', '0 0 2 * * ?'])).code).toBe(0);
    expect((await cli.run(['prune', '--older-than', '30d'])).code).toBe(0);

    const ns = await createNightshift({ db: url, jobs: [], logger: silentLogger });
    try {
      const app = createHttpApi(ns, { tokens: [{ name: 'victor', role: 'viewer', secret: 'victor-viewer-secret' }] });
      const r = await app.inject({ url: `/api/audit?actor=${encodeURIComponent(ACTOR)}`, headers: { authorization: 'Bearer victor-viewer-secret' } });
      expect(r.statusCode).toBe(200);
      const log = (r.json() as (AuditRecord & { at: string })[]).reverse();
      expectCliEntries(log);
      expect(log.map(summary)).toEqual([
        ['job.run', 'job noop', 'ok'],
        ['node.drain', 'node auditor', 'ok'],
        ['node.resume', 'node auditor', 'ok'],
        ['job.submit', 'job count', 'ok'],
        ['execution.stop', `execution ${submitted.id}`, 'ok'],
        ['execution.restart', `execution ${submitted.id}`, 'ok'],
        ['execution.restart', `execution ${submitted.id}`, 'refused'],
        ['schedule.put', 'schedule nightly', 'ok'],
        ['history.prune', 'history', 'ok'],
      ]);
      expect(log[5].detail).toEqual({ execution: restarted.id });
      expect(log[6].message).toBe(`execution ${submitted.id} is not the latest of its instance: execution ${restarted.id} is COMPLETED`);
      for (const a of log) expect(a.at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(JSON.stringify(log)).not.toContain('127.0.0.1');
      await app.close();
    } finally {
      await ns.close();
    }
  }, 120_000);
});

describe('the CLI in the audit log: on the connection the command acts on (postgres)', () => {
  it('each command that acts opens its repository once, its entry recorded there, refused or not', async () => {
    // Each opening of the repository checks its schema version in ns_meta: a command that recorded
    // its entry on a second connection (a second pool, a second check) reads it twice.
    const app = `nst_cliaudit_${process.pid}`;
    const url = `${postgres.freshUrl('cliaudit-once')}&application_name=${app}`;
    const schema = new URL(url).searchParams.get('schema')!;
    const observer = new pg.Client({ connectionString: PG_BASE });
    await observer.connect();
    onTestFinished(() => observer.end());
    const stats = async () => (await observer.query<{ reads: string; open: string }>(
      `SELECT (SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'ns_meta') AS reads,
              (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $2 || '%') AS open`, [schema, app])).rows[0];
    /** Reads of ns_meta so far, once the command's sessions have ended (and so reported theirs). */
    const metaReads = async (atLeast = 0) => waitFor(async () => {
      const s = await stats();
      return Number(s.open) === 0 && Number(s.reads) >= atLeast ? Number(s.reads) : undefined;
    }, 10_000, 'the command to end its sessions');
    const cli = cliFor(url);
    const submitted = await cli.json(['submit', 'noop', 'run.id=1']);
    const launches = join(mkdtempSync(join(tmpdir(), 'nightshift-cliaudit-')), 'launches.jsonl');
    writeFileSync(launches, '{"job": "noop", "params": {"run.id": 4}}\n{"job": "nosuch"}\n');
    const checks: [string, number][] = [];
    for (const [args, code] of [
      [['stop', String(submitted.id)], 0],
      [['abandon', String(submitted.id)], 0],
      [['stop', String(submitted.id)], 2],
      [['drain', 'nosuch'], 2],
      [['schedule', 'add', 'hourly', '--job', 'noop', '--every', '1h', 'run.id=2'], 0],
      [['schedule', 'pause', 'hourly'], 0],
      [['schedule', 'resume', 'hourly'], 0],
      [['schedule', 'trigger', 'hourly'], 0],
      [['schedule', 'remove', 'hourly'], 0],
      [['submit', 'noop', 'run.id=3'], 0],
      [['submit-many', launches], 1],
      [['prune', '--older-than', '30d'], 0],
    ] as const) {
      const before = await metaReads();
      expect((await cli.run([...args])).code, args.join(' ')).toBe(code);
      checks.push([args.join(' '), (await metaReads(before + 1)) - before]);
    }
    expect(checks.filter(([, n]) => n !== 1), 'commands that opened the repository more than once').toEqual([]);
    expect((await auditLog(url)).map((a) => a.outcome)).toEqual(['ok', 'ok', 'ok', 'refused', 'refused', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  }, 120_000);
});
