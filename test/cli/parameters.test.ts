/**
 * Job-level parameter validators and custom incrementers through the real `nightshift`
 * process, on both backends: `run --next` follows the job's incrementer, and a launch its
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
