/**
 * `nightshift submit-many FILE`: launches read from a file of JSON lines, queued at once. Each
 * line is answered on its own (refused lines on stderr, naming file and line); a malformed line
 * fails the whole file before anything is submitted. Runs on both backends.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { cliFor, expectOneLineError, scalar } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-submit-many-'));
const file = (name: string, lines: string[]) => {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
};

interface BatchJson {
  submitted: number;
  failed: number;
  results: { index: number; line: number; executionId?: number; error?: string }[];
}

describe.each(backends())('nightshift submit-many on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('queues each good line, reports each refused one by line, and exits 1 when any was refused', async () => {
    const db = backend.freshUrl('cli-submit-many');
    const cli = cliFor(db);
    const path = file(`ok-${backend.name}.jsonl`, [
      '{"job": "count", "params": {"items": 10, "tag": "f1"}}',
      '',
      '{"job": "count", "params": {"items": "ten"}}',
      '{"job": "noop"}',
      '{"job": "count", "params": {"items": 10, "tag": "f1"}}',
    ]);
    const r = await cli.json<BatchJson>(['submit-many', path], 1);
    expect(r).toMatchObject({ submitted: 2, failed: 2 });
    expect(r.results.map((x) => [x.index, x.line, x.executionId !== undefined])).toEqual([[0, 1, true], [1, 3, false], [2, 4, true], [3, 5, false]]);
    expect(r.results[1].error).toMatch(/items/);
    expect(r.results[3].error).toMatch(/item 0/);
    expect(await scalar(db, `SELECT count(*) AS n FROM ns_job_execution WHERE status = 'STARTING'`)).toBe(2);

    const again = await cli.run(['submit-many', path]);
    expect(again.code).toBe(1);
    expect(again.stdout.trim()).toBe('0 submitted, 4 refused');
    expect(again.stderr).toContain(`${path}:1: job count for parameters`);
    expect(again.stderr).toContain(`${path}:3: `);

    const fresh = file(`fresh-${backend.name}.jsonl`, ['{"job": "count", "params": {"tag": "f2"}}', '{"job": "count", "params": {"tag": "f3"}}']);
    const ok = await cli.run(['submit-many', fresh]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('2 submitted, 0 refused');
    expect(await scalar(db, `SELECT count(*) AS n FROM ns_job_execution WHERE status = 'STARTING'`)).toBe(4);
  });

  it('a malformed line fails the whole file with one line naming it, and nothing is submitted', async () => {
    const db = backend.freshUrl('cli-submit-bad');
    const cli = cliFor(db);
    const notJson = file(`bad-${backend.name}.jsonl`, ['{"job": "noop"}', '{"job": "count", "params": {"items": 3}', '{"job": "noop"}']);
    expectOneLineError(await cli.run(['submit-many', notJson]), new RegExp(`${notJson.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: not JSON`));
    const noJob = file(`nojob-${backend.name}.jsonl`, ['{"params": {}}']);
    expectOneLineError(await cli.run(['submit-many', noJob]), /:1: "job" must be a job name/);
    expectOneLineError(await cli.run(['submit-many', join(dir, 'missing.jsonl')]), /cannot read .*missing\.jsonl/);
    expect(await scalar(db, 'SELECT count(*) AS n FROM ns_job_execution')).toBe(0);
  });
});
