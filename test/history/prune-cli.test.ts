import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { seedHistory } from '../support/history.ts';
import { EXAMPLES, ROOT, runCli } from '../cli/run-cli.ts';

const dirs: string[] = [];
const freshDb = () => {
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-prune-cli-'));
  dirs.push(dir);
  return `sqlite:${join(dir, 'ns.db')}`;
};

/** The README's prune commands, as written. */
const readmePruneLines = () =>
  [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1]).filter((b) => b.includes('nightshift prune'))
    .flatMap((b) => b.split('\n')).filter((l) => l.startsWith('npx nightshift prune'));

describe('nightshift prune and nodes --all (CLI)', () => {
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('prunes old history as the README shows, keeping restartable instances, and reports what it deleted', async () => {
    const db = freshDb();
    const repo = await openDatabase(db);
    await seedHistory(repo, { count: 470, jobs: 2, newestAgeMs: 40 * 86_400_000 });
    await seedHistory(repo, { count: 10, jobs: 2, newestAgeMs: 0 });
    await repo.close();
    const [first, second] = readmePruneLines();
    expect(first).toBe('npx nightshift prune --older-than 30d --keep-last 100');
    const words = (l: string) => l.split(/\s+/).slice(2);
    const r1 = await runCli([...words(first), '--json'], { env: { NIGHTSHIFT_DB: db } });
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const out = JSON.parse(r1.stdout) as { executions: number; batches: number };
    // 470 old: 10 FAILED (every 47th) and 4 STOPPED (every 97th, none both) are restartable; each job
    // keeps its newest 100, which are the 5 recent ones and 95 old ones.
    const check = await openDatabase(db);
    const left = await check.query<{ status: string; n: number }>(`SELECT status, count(*) AS n FROM ns_job_execution GROUP BY status ORDER BY status`);
    await check.close();
    const total = left.reduce((a, r) => a + Number(r.n), 0);
    expect(out.executions).toBe(480 - total);
    expect(left.find((r) => r.status === 'FAILED')?.n).toBe(10);
    expect(left.find((r) => r.status === 'STOPPED')?.n).toBe(4);
    expect(total).toBeGreaterThanOrEqual(200);
    // Without --keep-last, the old COMPLETED executions that were kept go too; the restartable stay.
    const r2 = await runCli(words(second), { env: { NIGHTSHIFT_DB: db } });
    expect(r2.code).toBe(0);
    expect((JSON.parse(r2.stdout) as { executions: number }).executions).toBe(total - 10 - 14);
    const r3 = await runCli(['prune', '--older-than', '1d', '--db', db]);
    expect(r3.stdout).toBe('deleted 0 executions that ended over 1 day ago (0 step executions, 0 instances) in 0 batches, and 0 ended node incarnations\n');
    const [third] = readmePruneLines().slice(2);
    expect(third).toBe('npx nightshift prune --older-than 30d --keep-last 100 --dry-run');
    const r4 = await runCli(words(third), { env: { NIGHTSHIFT_DB: db } });
    expect(r4.stdout).toBe('would delete 0 executions that ended over 30 days ago (0 step executions, 0 instances) and 0 ended node incarnations; nothing deleted\n');
  });

  it('--dry-run prints what the same prune would delete, deletes nothing, and the prune then deletes that', async () => {
    const db = freshDb();
    const repo = await openDatabase(db);
    await seedHistory(repo, { count: 470, jobs: 2, newestAgeMs: 40 * 86_400_000 });
    await seedHistory(repo, { count: 10, jobs: 2, newestAgeMs: 0 });
    await repo.execute(
      `INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms, started_at, last_heartbeat, lease_until, ended_at)
       VALUES ('old', 'c', 'h', 1, 'node', 'left', '[]', 1, 1000, 5000, 0, 0, 0, ns_now() - 40 * 86400000)`,
    );
    const counts = async () => {
      const c: Record<string, number> = {};
      for (const t of ['ns_job_instance', 'ns_job_execution', 'ns_step_execution', 'ns_node', 'ns_execution_count']) {
        c[t] = Number((await repo.query<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))[0].n);
      }
      return c;
    };
    const before = await counts();
    const args = ['prune', '--older-than', '30d', '--keep-last', '100', '--db', db];
    const line = await runCli([...args, '--dry-run']);
    expect(line.stderr).toBe('');
    expect(line.code).toBe(0);
    const m = /^would delete (\d+) executions that ended over \d+ \w+ ago \((\d+) step executions, (\d+) instances\) and (\d+) ended node incarnations; nothing deleted\n$/.exec(line.stdout);
    expect(m, line.stdout).not.toBeNull();
    const json = await runCli([...args, '--dry-run', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const dry = JSON.parse(json.stdout) as Record<string, number | boolean>;
    expect(dry).toMatchObject({ executions: Number(m![1]), steps: Number(m![2]), instances: Number(m![3]), nodes: 1, dryRun: true });
    expect(dry.executions).toBeGreaterThan(200);
    expect(await counts()).toEqual(before);
    const real = await runCli([...args, '--json']);
    expect(real.code, real.stderr).toBe(0);
    expect(JSON.parse(real.stdout)).toEqual({ ...dry, dryRun: false });
    const after = await counts();
    expect(before.ns_job_execution - after.ns_job_execution).toBe(dry.executions);
    expect(before.ns_step_execution - after.ns_step_execution).toBe(dry.steps);
    expect(before.ns_job_instance - after.ns_job_instance).toBe(dry.instances);
    await repo.close();
  });

  it('refuses a bad duration, an unknown status and a running status with exit code 2 and one line', async () => {
    const db = freshDb();
    await (await openDatabase(db)).close(); // prune acts on an existing repository
    for (const [args, message] of [
      [['--older-than', 'soon'], /--older-than: expected a duration such as 30d/],
      [['--older-than', '1d', '--status', 'DONE'], /--status: unknown status "DONE"/],
      [['--older-than', '1d', '--status', 'STARTED'], /STARTED executions are running work and are never pruned/],
      [['--older-than', '1d', '--keep-last', '-3'], /--keep-last: expected a whole number/],
    ] as const) {
      const r = await runCli(['prune', ...args, '--db', db]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('nodes shows the newest incarnation of each name; --all shows every one', async () => {
    const db = freshDb();
    const repo = await openDatabase(db);
    const add = (name: string, status: string) => repo.execute(
      `INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms, started_at, last_heartbeat, lease_until, ended_at)
       VALUES ($1, 'c', 'h', 1, 'node', $2, '[]', 1, 1000, 5000, ns_now(), ns_now(), ns_now() + 60000, CASE WHEN $2 = 'alive' THEN NULL ELSE ns_now() END)`,
      [name, status]);
    await add('a', 'dead');
    await add('b', 'left');
    await add('a', 'dead');
    await add('a', 'alive');
    // Two nodes started with one name: the older is still alive, and is never hidden behind the newer.
    await add('c', 'alive');
    await add('c', 'left');
    await repo.close();
    const newest = await runCli(['nodes', '--json', '--db', db, '--config', EXAMPLES]);
    expect(newest.code, newest.stderr).toBe(0);
    expect((JSON.parse(newest.stdout) as { name: string; status: string }[]).map((n) => `${n.name}:${n.status}`)).toEqual(['b:left', 'a:alive', 'c:alive', 'c:left']);
    const all = await runCli(['nodes', '--all', '--json', '--db', db, '--config', EXAMPLES]);
    expect((JSON.parse(all.stdout) as { name: string; status: string }[]).map((n) => `${n.name}:${n.status}`)).toEqual(['a:dead', 'b:left', 'a:dead', 'a:alive', 'c:alive', 'c:left']);
  });
});
