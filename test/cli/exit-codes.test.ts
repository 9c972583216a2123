/**
 * The CLI's exit code through a job's `exitCodes` mapping (Spring Batch's ExitCodeMapper), with
 * the real `nightshift` process on both backends: mapped exit codes, patterns, and the
 * contract's defaults where nothing matches: 0 COMPLETED, 1 an execution that ended otherwise
 * (whatever failed it, bad input met while running too), 2 bad usage before any execution exists.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defineJob, processExitCode } from '../../src/core/job.ts';
import { exitStatus } from '../../src/core/status.ts';
import { backends } from '../support/backends.ts';
import { thrown } from '../fixtures/engine/support.ts';
import { cliFor, expectOneLineError } from './run-cli.ts';

const CONFIG = `
import { defineJob, exitStatus, p, UsageError } from 'nightshift';

export const outcome = defineJob({
  name: 'outcome',
  params: { code: p.string({ required: true }), attempt: p.int({ default: 1 }) },
  exitCodes: { NOOP: 3, 'PARTIAL*': 4, PARTIAL_LATE: 5 },
  steps: (s) => [
    s.tasklet({
      name: 'decide',
      tasklet: ({ params, executionNumber }) => {
        if (params.code === 'FAILED' && executionNumber === 1) throw new Error('boom');
        if (params.code === 'BAD_INPUT') throw new UsageError('input file missing');
        return exitStatus(params.code === 'FAILED' ? 'NOOP' : params.code);
      },
      on: { 'PARTIAL*': { end: 'PARTIAL' }, PARTIAL_LATE: { end: 'PARTIAL_LATE' }, NOOP: { end: 'NOOP' }, COMPLETED: 'end' },
    }),
  ],
});

export const plain = defineJob({
  name: 'plain',
  params: { fail: p.boolean({ default: false }) },
  steps: (s) => [s.tasklet({ name: 'work', tasklet: ({ params }) => { if (params.fail) throw new Error('broken'); } })],
});
`;

describe.each(backends())('CLI exit codes from the job exit status ($name)', (backend) => {
  afterAll(() => backend.cleanup());
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-exit-'));
  const config = join(dir, 'nightshift.config.ts');
  writeFileSync(config, CONFIG);

  it('maps exit codes, the most specific pattern first, and leaves the rest to the defaults', async () => {
    const cli = cliFor(backend.freshUrl('exitcodes'), config);
    const cases: [string[], number, string][] = [
      [['run', 'outcome', 'code=NOOP'], 3, 'NOOP'],
      [['run', 'outcome', 'code=PARTIAL_EARLY'], 4, 'PARTIAL'],
      [['run', 'outcome', 'code=PARTIAL_LATE'], 5, 'PARTIAL_LATE'],
      [['run', 'outcome', 'code=COMPLETED'], 0, 'COMPLETED'],
      [['run', 'outcome', 'code=ODD'], 1, 'FAILED'], // no transition takes ODD: the job fails
      [['run', 'outcome', 'code=BAD_INPUT'], 1, 'FAILED'], // an execution exists: its status decides
    ];
    for (const [args, code, exitCode] of cases) {
      const r = await cli.run([...args, '--json']);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(code);
      expect(JSON.parse(r.stdout)).toMatchObject({ jobName: 'outcome', exitStatus: { code: exitCode } });
    }
  });

  it('a restart exits by the mapping too; bad usage stays 2 whatever the mapping', async () => {
    const cli = cliFor(backend.freshUrl('exitrestart'), config);
    const failed = await cli.run(['run', 'outcome', 'code=FAILED', '--json']);
    expect(failed.code).toBe(1); // FAILED is not mapped
    const restarted = await cli.run(['restart', String(JSON.parse(failed.stdout).id)]);
    expect(restarted.code).toBe(3); // the restart ends NOOP
    expectOneLineError(await cli.run(['run', 'outcome', 'code=NOOP', 'colour=red']), /unknown parameter colour/, 2);
  });

  it('a job without exitCodes keeps the contract: 0 COMPLETED, 1 FAILED', async () => {
    const cli = cliFor(backend.freshUrl('exitplain'), config);
    expect((await cli.run(['run', 'plain'])).code).toBe(0);
    expect((await cli.run(['run', 'plain', 'fail=true'])).code).toBe(1);
  });
});

describe('exitCodes in a job definition', () => {
  it('is checked when the job is defined', () => {
    const def = (exitCodes: Record<string, number>) => () =>
      defineJob({ name: 'j', exitCodes, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });
    expect(thrown(def({ NOOP: 256 })).message).toBe('job j: exitCodes: NOOP must map to a process exit code from 0 to 255, got 256');
    expect(thrown(def({ 'NO OP': 3 })).message).toContain('job j: exitCodes: invalid exit-status pattern "NO OP"');
  });

  it('processExitCode is the mapping the CLI uses', () => {
    const job = { exitCodes: { 'C*': 7 } };
    expect(processExitCode(job, { status: 'COMPLETED', exitStatus: exitStatus('COMPLETED') })).toBe(7);
    expect(processExitCode(job, { status: 'FAILED', exitStatus: exitStatus('FAILED') })).toBe(1);
    expect(processExitCode(undefined, { status: 'STOPPED', exitStatus: exitStatus('STOPPED') })).toBe(1);
  });
});
