/**
 * The import-csv example job through the CLI: valid rows into people, one reject per bad row
 * with its line and reason, skip counts, and the skip limit.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { REASON, writePeopleCsv, type BadKind } from './csv-data.ts';
import { cliFor, expectExecutionShape, query, scalar } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-cli-csv-'));

describe.each(backends())('nightshift run import-csv on $name', (backend) => {
  afterAll(async () => {
    await backend.cleanup();
    if (backend.name === 'postgres') rmSync(dir, { recursive: true, force: true });
  });

  it('imports valid rows once and records one reject per bad row with its line and reason', async () => {
    const db = backend.freshUrl('cli-csv');
    const cli = cliFor(db);
    const bad: Record<number, BadKind> = { 10: 'id', 50: 'email', 123: 'amount', 400: 'columns', 777: 'utf8', 1500: 'id', 1999: 'columns', 2000: 'amount' };
    const csv = join(dir, `people-${backend.name}.csv`);
    const plan = await writePeopleCsv(csv, 2000, (i) => bad[i]);

    const e = await cli.json(['run', 'import-csv', `input=${csv}`, 'chunk=300']);
    expectExecutionShape(e);
    expect(e).toMatchObject({ jobName: 'import-csv', status: 'COMPLETED', parameters: { input: csv, chunk: 300, skipLimit: 100 } });
    const step = e.steps!.find((s) => s.name === 'import')!;
    expect(step).toMatchObject({
      status: 'COMPLETED',
      writeCount: plan.valid.size,
      readSkipCount: plan.readSkips,
      processSkipCount: plan.processSkips,
      writeSkipCount: 0,
      filterCount: 0,
    });

    const people = await query<{ id: unknown; name: string; email: string; amount: unknown }>(db, 'SELECT id, name, email, amount FROM people ORDER BY id');
    expect(people.map((p) => Number(p.id))).toEqual([...plan.valid.keys()]);
    for (const p of people) {
      const want = plan.valid.get(Number(p.id))!;
      expect({ name: p.name, email: p.email, amount: Number(p.amount) }).toEqual({ name: want.name, email: want.email, amount: Number(want.amount) });
    }
    expect(people.find((p) => Number(p.id) === 97)!.name).toBe('Doe, Jane "JD" 97');
    expect(people.find((p) => Number(p.id) === 5)!.name).toBe('Two\nLines 5');

    const rejects = await query<{ execution_id: unknown; line: unknown; reason: string; raw: string | null }>(
      db, 'SELECT execution_id, line, reason, raw FROM people_rejects ORDER BY line',
    );
    expect(rejects.map((r) => Number(r.line))).toEqual(plan.bad.map((b) => b.line));
    rejects.forEach((r, i) => {
      const { kind, line } = plan.bad[i];
      expect(Number(r.execution_id)).toBe(e.id);
      expect(r.reason, `line ${line} (${kind})`).toMatch(REASON[kind]);
      expect(r.raw, `line ${line} (${kind})`).toBeTruthy();
    });
    // The row after the two-line record is still numbered right: record 10 starts on line 12.
    expect(plan.bad[0]).toEqual({ line: 12, kind: 'id' });
  });

  it('a duplicate id is a bad row named by its line; past the skip limit it fails naming that line', async () => {
    const db = backend.freshUrl('cli-csv-dup');
    const cli = cliFor(db);
    // Record i is on line i + 1. Records 12 and 25 repeat the ids of records 3 and 7.
    const idOf = (i: number) => (i === 12 ? 3 : i === 25 ? 7 : i);
    const rows = (n: number, id: (i: number) => number) =>
      'id,name,email,amount\n' + Array.from({ length: n }, (_, k) => `${id(k + 1)},P${k + 1},p${k + 1}@x.io,${k + 1}.5`).join('\n') + '\n';
    const first = join(dir, `dup-${backend.name}.csv`);
    writeFileSync(first, rows(30, idOf));

    const e = await cli.json(['run', 'import-csv', `input=${first}`, 'chunk=10']);
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    // Each of the two chunks rolled back once, then each duplicate's own transaction rolled back.
    expect(e.steps!.find((s) => s.name === 'import')).toMatchObject({ writeCount: 28, writeSkipCount: 2, rollbackCount: 4 });
    const rejects = await query<{ line: unknown; reason: string }>(db, 'SELECT line, reason FROM people_rejects ORDER BY line');
    expect(rejects.map((r) => [Number(r.line), r.reason])).toEqual([[13, 'id 3 is already imported'], [26, 'id 7 is already imported']]);

    // Another file whose ids 1 and 2 are already imported, with room for one bad row only.
    const second = join(dir, `dup2-${backend.name}.csv`);
    writeFileSync(second, rows(5, (i) => (i <= 2 ? i : 100 + i)));
    const r = await cli.run(['run', 'import-csv', `input=${second}`, 'skipLimit=1', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const failed = JSON.parse(r.stdout);
    expect(failed.exitStatus.description).toMatch(new RegExp(`skip limit 1 exceeded in write: .*${second.replace(/[.]/g, '\\.')}, line 3: id 2 is already imported`));
    expect(r.stderr.split('\n').filter((l) => l.trim())).toEqual([expect.stringMatching(/ended FAILED: skip limit 1 exceeded .*line 3/)]);
  });

  it('more bad rows than skipLimit fail the execution (exit 1) naming the line over the limit', async () => {
    const db = backend.freshUrl('cli-csv-limit');
    const cli = cliFor(db);
    const bad: Record<number, BadKind> = { 20: 'email', 40: 'columns', 60: 'amount', 80: 'id', 90: 'email' };
    const csv = join(dir, `limit-${backend.name}.csv`);
    const plan = await writePeopleCsv(csv, 100, (i) => bad[i]);
    const third = plan.bad[2].line;

    const r = await cli.run(['run', 'import-csv', `input=${csv}`, 'chunk=10', 'skipLimit=2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const e = JSON.parse(r.stdout);
    expectExecutionShape(e);
    expect(e.status).toBe('FAILED');
    expect(e.exitStatus.code).toBe('FAILED');
    expect(e.exitStatus.description).toMatch(new RegExp(`(line |:)${third}\\b`));
    expect(e.exitStatus.description).toMatch(/skip limit/i);
    // Chunks before the failing one committed; the two tolerated rejects are recorded once.
    const rejects = await query<{ line: unknown }>(db, 'SELECT line FROM people_rejects ORDER BY line');
    expect(rejects.map((x) => Number(x.line))).toEqual(plan.bad.slice(0, 2).map((b) => b.line));
    // Whole chunks before the one holding record 60: a prefix of the valid rows, none from that chunk.
    const ids = (await query<{ id: unknown }>(db, 'SELECT id FROM people ORDER BY id')).map((x) => Number(x.id));
    expect(ids.length).toBeGreaterThanOrEqual(40);
    expect(ids).toEqual([...plan.valid.keys()].slice(0, ids.length));
    expect(Math.max(...ids)).toBeLessThan(60);
    expect(await scalar(db, 'SELECT count(*) AS n FROM people')).toBe(ids.length);

    // Again with the same identifying parameters (text output): the failed instance resumes from
    // its last commit with a fresh skip count, so records 60 and 80 are tolerated and 90 exceeds it.
    const text = await cli.run(['run', 'import-csv', `input=${csv}`, 'chunk=10', 'skipLimit=2']);
    expect(text.code).toBe(1);
    expect(text.stderr).not.toMatch(/^\s+at /m);
    expect(text.stderr).toMatch(new RegExp(`ended FAILED: .*skip limit.*(line |:)${plan.bad[4].line}\\b`));
    const after = await query<{ line: unknown }>(db, 'SELECT line FROM people_rejects ORDER BY line');
    expect(after.map((x) => Number(x.line))).toEqual(plan.bad.slice(0, 4).map((b) => b.line));
  });
});
