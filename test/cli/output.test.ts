/**
 * The CLI's text of an execution: its instance's other executions, a few on each side of it; and
 * the list's table, where a restarted execution's status names its instance's newest execution.
 */
import { describe, expect, it } from 'vitest';
import type { JobExecution } from '../../src/core/model.ts';
import type { ExecutionDetails } from '../../src/operator.ts';
import { executionText, executionsText } from '../../src/cli/output.ts';

const execution = (id: number, status: string) => ({
  id, instanceId: 1, jobName: 'job', status, params: {}, node: null, startTime: null, endTime: null,
  exitStatus: { code: status, description: '' },
}) as unknown as JobExecution;

describe('execution text', () => {
  const runs = Array.from({ length: 20 }, (_, i) => execution(i + 1, i === 19 ? 'COMPLETED' : 'FAILED')).reverse();
  const line = (id: number, list = runs) =>
    executionText({ ...execution(id, 'FAILED'), steps: [] } as unknown as ExecutionDetails, list).split('\n').find((l) => l.includes('executions of instance'));

  it('names five executions on each side of this one, and how many more there are', () => {
    expect(line(10)).toBe('  executions of instance 1: 4 earlier, #5 FAILED, #6 FAILED, #7 FAILED, #8 FAILED, #9 FAILED, #10 FAILED (this one), '
      + '#11 FAILED, #12 FAILED, #13 FAILED, #14 FAILED, #15 FAILED, 5 later');
    expect(line(20)).toBe('  executions of instance 1: 14 earlier, #15 FAILED, #16 FAILED, #17 FAILED, #18 FAILED, #19 FAILED, #20 COMPLETED (this one)');
    expect(line(1, runs.slice(-3))).toBe('  executions of instance 1: #1 FAILED (this one), #2 FAILED, #3 FAILED');
  });

  it('says nothing of an instance with one execution', () => {
    expect(line(1, [execution(1, 'FAILED')])).toBeUndefined();
  });
});

describe('executions table', () => {
  const listed = (id: number, status: string, restartedAs: { id: number; status: string } | null, params: Record<string, unknown> = {}) =>
    ({ ...execution(id, status), params, createTime: new Date('2026-01-02T03:04:05.000Z'), restartedAs }) as unknown as JobExecution;

  it("marks a restarted execution with its instance's newest, and still escapes what users typed", () => {
    const text = executionsText([
      listed(12, 'COMPLETED', null),
      listed(11, 'FAILED', null, { tag: 'red\u001b[31m' }),
      listed(10, 'FAILED', { id: 12, status: 'COMPLETED' }),
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^id\s+job\s+status\s+exit\s/);
    expect(lines[1]).toMatch(/^12\s+job\s+COMPLETED\s+COMPLETED\s/);
    expect(lines[2]).toMatch(/^11\s+job\s+FAILED\s+FAILED\s.*tag=red\\u001b\[31m$/);
    expect(lines[3]).toMatch(/^10\s+job\s+FAILED → #12 COMPLETED\s+FAILED\s/);
    // The columns stay aligned: the exit codes start where the header's does.
    const exitAt = lines[0].indexOf('exit');
    expect(lines.slice(1).map((l) => l.slice(exitAt, exitAt + 6))).toEqual(['COMPLE', 'FAILED', 'FAILED']);
    expect(text).not.toContain('\u001b');
  });
});
