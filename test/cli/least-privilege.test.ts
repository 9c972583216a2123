/**
 * A least-privilege PostgreSQL deployment (README: Database roles and privileges): the owner
 * creates and migrates the schema (`nightshift migrate`), and processes that run as a role with
 * only the README's grants (no CREATE on the database or the schema) work: a node claims and
 * completes work, `submit`, `serve` and the read-only commands answer. Opening a repository at
 * this version runs no DDL; a restricted role facing an older or absent schema exits 2 with one
 * line naming `nightshift migrate`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.ts';
import { migrateDatabase, openDatabase } from '../../src/repository/open.ts';
import { compatibleFrom, SCHEMA_VERSION } from '../../src/repository/schema.ts';
import { undoLastMigration } from '../support/schema-undo.ts';
import { backends, waitFor } from '../support/backends.ts';
import { admin } from '../support/pg-admin.ts';
import { cliFor, expectOneLineError, query, ROOT, runCli, type ExecutionJson } from './run-cli.ts';

const [, postgres] = backends();
const TOKENS = 'alice:operator:alice-operator-secret,victor:viewer:victor-viewer-secret';
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const tag = `${process.pid}_${Date.now().toString(36)}`;
const roles: string[] = [];

/** The README's grants of a runtime role, for `schema` and `role` (the owner is the suite's superuser). */
function readmeGrants(block: 'runtime' | 'read-only', schema: string, role: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Database roles and privileges'));
  const marker = block === 'runtime' ? '-- the runtime role' : '-- a read-only role';
  const sql = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
  if (!sql?.includes(marker)) throw new Error(`README: no SQL block for the ${block} role under Database roles and privileges`);
  const from = sql.indexOf(marker);
  const to = sql.indexOf('\n-- ', from + 1);
  return sql.slice(from, to < 0 ? undefined : to)
    .replaceAll('nightshift_owner', 'postgres').replaceAll(block === 'runtime' ? 'nightshift_app' : 'nightshift_viewer', role)
    .replace(/\bSCHEMA nightshift\b/g, `SCHEMA ${schema}`);
}

/** A new login role (no privileges but PUBLIC's), dropped after the file. */
async function newRole(label: string): Promise<string> {
  const role = `nsr_${label}_${tag}`;
  roles.push(role);
  await admin((c) => c.query(`CREATE ROLE ${role} LOGIN`));
  return role;
}

/** The repository URL `url` as another role. */
function asRole(url: string, role: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = '';
  return u.toString();
}

const schemaOf = (url: string) => new URL(url).searchParams.get('schema')!;

describe('least privilege (PostgreSQL)', () => {
  afterAll(async () => {
    await postgres.cleanup();
    await admin(async (c) => {
      for (const role of roles) {
        await c.query(`DROP OWNED BY ${role}`).catch(() => undefined);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      }
    });
  });

  it('a role with only the README grants runs a node, submit, serve and the read-only commands on a schema the owner migrated', async () => {
    const ownerUrl = postgres.freshUrl('privs');
    const schema = schemaOf(ownerUrl);
    expect((await runCli(['migrate', '--db', ownerUrl])).stdout).toBe(`schema created at ${SCHEMA_VERSION}\n`);
    const role = await newRole('app');
    await admin((c) => c.query(readmeGrants('runtime', schema, role)));
    const url = asRole(ownerUrl, role);
    // The role may create nothing: the check is real.
    await expect(query(url, `CREATE TABLE ${schema}.nope (x INT)`)).rejects.toThrow(/permission denied/);

    const cli = cliFor(url);
    let firstId = 0;
    const node = cli.spawn(['node', '--name', `privs-${tag}`, '--heartbeat-ms', '500', '--lease-ms', '5000']);
    try {
      await waitFor(async () => (await cli.json<{ name: string; status: string }[]>(['nodes'])).some((n) => n.status === 'alive'), 30_000, `the node alive (stderr: ${node.stderr()})`);
      const done = await cli.json<ExecutionJson>(['submit', 'noop', '--wait']);
      expect(done.status).toBe('COMPLETED');
      firstId = done.id;
      const listed = await cli.json<ExecutionJson[]>(['executions']);
      expect(listed.map((e) => [e.id, e.status])).toEqual([[done.id, 'COMPLETED']]);

      const server = cli.spawn(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
      try {
        const base = await waitFor(() => /listening on (http:\/\/\S+)/.exec(server.stdout())?.[1], 30_000, `serve listening (stderr: ${server.stderr()})`);
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
        const api = await fetch(`${base}/api/executions`, { headers: bearer('victor-viewer-secret') });
        expect(api.status).toBe(200);
        expect(((await api.json()) as ExecutionJson[]).map((e) => e.id)).toEqual([done.id]);
        // An action through the API writes its execution and its audit entry.
        const submitted = await fetch(`${base}/api/jobs/noop/executions`, { method: 'POST', headers: { ...bearer('alice-operator-secret'), 'content-type': 'application/json' }, body: '{"next":true}' });
        expect(submitted.status, await submitted.clone().text()).toBe(202);
        const { id } = (await submitted.json()) as { id: number };
        await waitFor(async () => (await cli.json<ExecutionJson>(['execution', String(id)])).status === 'COMPLETED', 30_000, 'the API launch completed');
        server.child.kill('SIGTERM');
        const end = await server.exited;
        expect(end.code, end.stderr).toBe(0);
        expect(end.stderr).not.toMatch(/permission denied/);
      } finally {
        server.child.kill('SIGKILL');
      }
      node.child.kill('SIGTERM');
      const end = await node.exited;
      expect(end.code, end.stderr).toBe(0);
      expect(end.stderr).not.toMatch(/permission denied|migrated/);
    } finally {
      node.child.kill('SIGKILL');
    }

    // A read-only role (SELECT only) lists executions and nodes.
    const viewer = await newRole('ro');
    await admin((c) => c.query(readmeGrants('read-only', schema, viewer)));
    const ro = cliFor(asRole(ownerUrl, viewer));
    expect((await ro.json<ExecutionJson[]>(['executions'])).map((e) => e.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect((await ro.json<{ status: string }[]>(['nodes'])).map((n) => n.status)).toEqual(['left']);
    expect((await ro.json<ExecutionJson>(['execution', String(firstId)])).status).toBe('COMPLETED');
    expect(await ro.json<unknown[]>(['schedule', 'list'])).toEqual([]);
  }, 120_000);

  it('a restricted role facing an older schema, or none, exits 2 with one line naming nightshift migrate', async () => {
    const ownerUrl = postgres.freshUrl('privsold');
    const schema = schemaOf(ownerUrl);
    const role = await newRole('old');
    // Before the owner created it: the role cannot create it.
    const absent = await runCli(['node', '--db', asRole(ownerUrl, role), '--config', join(ROOT, 'examples', 'nightshift.config.ts')]);
    expectOneLineError(absent, new RegExp(`^nightshift: no Nightshift schema that role ${role} can read at .*, and it may not create one \\(permission denied for database \\w+\\): run \`nightshift migrate\` with the role that owns the schema \\(it needs version ${SCHEMA_VERSION}\\)`));

    await migrateDatabase(ownerUrl);
    await admin((c) => c.query(readmeGrants('runtime', schema, role)));
    // An upgrade: this Nightshift is one version ahead of the schema.
    await query(ownerUrl, `UPDATE ns_meta SET value = $1 WHERE key = 'schema_version'`, [String(SCHEMA_VERSION - 1)]);
    const cli = cliFor(asRole(ownerUrl, role));
    const pattern = new RegExp(`^nightshift: the job repository .* has schema version ${SCHEMA_VERSION - 1}, older than this Nightshift \\(${SCHEMA_VERSION}\\), and role ${role} may not migrate it \\(permission denied for schema ${schema}\\): run \`nightshift migrate\` with the role that owns the schema`);
    expectOneLineError(await cli.run(['executions']), pattern);
    expectOneLineError(await cli.run(['node']), pattern);
    const server = await runCli(['serve', '--port', '0', '--db', asRole(ownerUrl, role)], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
    expect(server.code, server.stderr).toBe(2);
    expect(server.stderr).toMatch(new RegExp(pattern.source.slice(1)));
    // Nothing was changed.
    expect((await admin((c) => c.query(`SELECT value FROM ${schema}.ns_meta WHERE key = 'schema_version'`))).rows).toEqual([{ value: String(SCHEMA_VERSION - 1) }]);
  }, 120_000);
});

describe('nightshift migrate', () => {
  afterAll(async () => {
    await postgres.cleanup();
  });

  it('creates a fresh schema, finds it at its version the next time, and refuses a newer one (exit 2)', async () => {
    const url = postgres.freshUrl('migrate');
    const compatible = compatibleFrom();
    expect(JSON.parse((await runCli(['migrate', '--db', url, '--json'])).stdout)).toEqual({ from: 0, to: SCHEMA_VERSION, migrated: true, compatibleFrom: compatible });
    const again = await runCli(['migrate', '--db', url]);
    expect([again.code, again.stdout]).toEqual([0, `schema already at ${SCHEMA_VERSION}\n`]);
    expect(JSON.parse((await runCli(['migrate', '--db', url, '--json'])).stdout)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, migrated: false, compatibleFrom: compatible });
    // A schema of the version before: without what the last migration adds.
    const schema = schemaOf(url);
    await admin((c) => c.query(`SET search_path TO ${schema}; UPDATE ns_meta SET value = '${SCHEMA_VERSION - 1}' WHERE key = 'schema_version'; ${undoLastMigration('postgres').join('; ')}`));
    const older = compatible < SCHEMA_VERSION ? `; processes of schema version ${compatible} or later can run on it` : '';
    expect((await runCli(['migrate', '--db', url])).stdout).toBe(`schema migrated from ${SCHEMA_VERSION - 1} to ${SCHEMA_VERSION}${older}\n`);
    // A newer Nightshift migrated it, and says processes of this version cannot run on it.
    await admin((c) => c.query(`UPDATE ${schema}.ns_meta SET value = '${SCHEMA_VERSION + 1}' WHERE key IN ('schema_version', 'compatible_from')`));
    expectOneLineError(await runCli(['migrate', '--db', url, '--json']),
      new RegExp(`^nightshift: the job repository .* has schema version ${SCHEMA_VERSION + 1}, newer than this Nightshift \\(${SCHEMA_VERSION}\\): upgrade Nightshift$`));
    // It says they can: nothing to do (and nothing changed).
    await admin((c) => c.query(`UPDATE ${schema}.ns_meta SET value = '${SCHEMA_VERSION}' WHERE key = 'compatible_from'`));
    const newer = await runCli(['migrate', '--db', url]);
    expect([newer.code, newer.stdout]).toEqual([0,
      `schema at ${SCHEMA_VERSION + 1}, newer than this Nightshift (${SCHEMA_VERSION}); processes of schema version ${SCHEMA_VERSION} or later can run on it: nothing to do\n`]);
    expect((await admin((c) => c.query(`SELECT key, value FROM ${schema}.ns_meta ORDER BY key`))).rows).toEqual([
      { key: 'compatible_from', value: String(SCHEMA_VERSION) }, { key: 'schema_version', value: String(SCHEMA_VERSION + 1) }]);
  }, 60_000);

  it('migrates an SQLite repository too', async () => {
    const [sqlite] = backends();
    try {
      const url = sqlite.freshUrl('migrate');
      expect((await runCli(['migrate', '--db', url])).stdout).toBe(`schema created at ${SCHEMA_VERSION}\n`);
      expect((await runCli(['migrate', '--db', url])).stdout).toBe(`schema already at ${SCHEMA_VERSION}\n`);
    } finally {
      await sqlite.cleanup();
    }
  }, 60_000);

  it('logs one info line naming the versions when opening migrates, and none when the schema is at its version', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const url = postgres.freshUrl('migratelog');
    await (await openDatabase(url, { logger })).close();
    expect(lines.map((l) => JSON.parse(l) as { msg: string; from: number; to: number }))
      .toEqual([expect.objectContaining({ level: 30, from: 0, to: SCHEMA_VERSION, msg: `job repository schema created at version ${SCHEMA_VERSION}` })]);
    await (await openDatabase(url, { logger })).close();
    expect(lines).toHaveLength(1);
  });

  it('opens a PostgreSQL repository at its version without DDL: no lock, no function replaced', async () => {
    const url = postgres.freshUrl('noddl');
    await migrateDatabase(url);
    const schema = schemaOf(url);
    const before = await admin(async (c) => (await c.query<{ xmin: string }>(`SELECT p.xmin FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'ns_now'`, [schema])).rows[0].xmin);
    await (await openDatabase(url)).close();
    const after = await admin(async (c) => (await c.query<{ xmin: string }>(`SELECT p.xmin FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'ns_now'`, [schema])).rows[0].xmin);
    expect(after).toBe(before);
  });
});
