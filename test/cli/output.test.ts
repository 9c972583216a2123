/** The CLI's text of an execution: its instance's other executions, a few on each side of it. */
import { describe, expect, it } from 'vitest';
import type { JobExecution } from '../../src/core/model.ts';
import type { ExecutionDetails } from '../../src/operator.ts';
import { executionText } from '../../src/cli/output.ts';

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
