/**
 * Job-level parameter validators and custom incrementers through the real `nightshift`
 * process, on both backends: `run --next` (and `submit --next`) follows the job's incrementer, and a launch its
 * validators refuse exits 2 with one line naming the parameters, having written nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { cliFor, expectOneLineError, scalar } from './run-cli.ts';

const CONFIG = `
import { defineJob, p } from 'nightshift';

const DAY_MS = 86_400_000;

export const daily = defineJob({
  name: 'daily',
  params: { day: p.date({ required: true }), from: p.int({ default: 0 }), to: p.int({ default: 10 }) },
  incrementer: (previous) => ({ day: previous ? new Date(previous.day.getTime() + DAY_MS) : new Date('2024-01-01T00:00:00Z') }),
  validate: ({ from, to }) => (from > to ? { params: ['from', 'to'], message: 'from must not be above to' } : undefined),
  steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })],
});

export const plain = defineJob({ name: 'plain', steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
`;

describe.each(backends())('CLI job parameters ($name)', (backend) => {
  afterAll(() => backend.cleanup());
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-params-'));
  const config = join(dir, 'nightshift.config.ts');
  writeFileSync(config, CONFIG);

  it('run --next follows the incrementer; given parameters override it', async () => {
    const cli = cliFor(backend.freshUrl('next'), config);
    expect((await cli.json(['run', 'daily', '--next'])).parameters).toEqual({ day: '2024-01-01T00:00:00.000Z', from: 0, to: 10 });
    expect((await cli.json(['run', 'daily', '--next', 'to=20'])).parameters).toEqual({ day: '2024-01-02T00:00:00.000Z', from: 0, to: 20 });
  });

  it('submit --next queues the next instance for the cluster, as run --next runs it here; a completed instance submitted again names both', async () => {
    const cli = cliFor(backend.freshUrl('submitnext'), config);
    const first = await cli.json<{ id: number; status: string; parameters: Record<string, unknown> }>(['submit', 'daily', '--next']);
    expect(first).toMatchObject({ status: 'STARTING', parameters: { day: '2024-01-01T00:00:00.000Z', from: 0, to: 10 } });
    // The queued instance is the newest: the next one follows it, with a given parameter over the incrementer's.
    const second = await cli.json<{ id: number; parameters: Record<string, unknown> }>(['submit', 'daily', '--next', 'to=20']);
    expect(second.parameters).toEqual({ day: '2024-01-02T00:00:00.000Z', from: 0, to: 20 });
    const plain = await cli.run(['submit', 'plain', '--next']);
    expect(plain.code, plain.stderr).toBe(0);
    expect((await cli.json<{ parameters: Record<string, unknown> }>(['execution', plain.stdout.trim()])).parameters).toEqual({ 'run.id': 1 });
    // A run of the same instance, completed, is refused with both ways to start the next one.
    expect((await cli.run(['run', 'plain', 'run.id=5'])).code).toBe(0);
    expectOneLineError(await cli.run(['submit', 'plain', 'run.id=5']), /^nightshift: job plain already completed for parameters run\.id=5 \(execution \d+\); .*`nightshift run --next` or `submit --next`/);
  });

  it('run and submit refused by a validator exit 2 with one line naming the parameters, and write nothing', async () => {
    const url = backend.freshUrl('refuse');
    const cli = cliFor(url, config);
    const line = /^nightshift: job daily: parameters from, to: from must not be above to$/;
    expectOneLineError(await cli.run(['run', 'daily', 'day=2024-05-01', 'from=5', 'to=1']), line);
    expectOneLineError(await cli.run(['run', 'daily', '--next', 'from=5', 'to=1']), line);
    expectOneLineError(await cli.run(['submit', 'daily', 'day=2024-05-01', 'from=5', 'to=1']), line);
    expect(await scalar(url, 'SELECT count(*) AS n FROM ns_job_execution')).toBe(0);
    expect(await scalar(url, 'SELECT count(*) AS n FROM ns_job_instance')).toBe(0);
  });
});
