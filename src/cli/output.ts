import type { JobDefinition } from '../core/job.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import type { ExecutionDetails, NodeInfo } from '../operator.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A step execution in the CLI's JSON shape (SPEC section 7). */
export function stepJson(s: StepExecution) {
  return {
    name: s.stepName,
    status: s.status,
    exitStatus: { code: s.exitStatus.code, description: s.exitStatus.description },
    readCount: s.readCount,
    writeCount: s.writeCount,
    filterCount: s.filterCount,
    readSkipCount: s.readSkipCount,
    processSkipCount: s.processSkipCount,
    writeSkipCount: s.writeSkipCount,
    commitCount: s.commitCount,
    rollbackCount: s.rollbackCount,
    startTime: iso(s.startTime),
    endTime: iso(s.endTime),
    node: s.node,
  };
}

/** An execution in the CLI's JSON shape (SPEC section 7); steps when known. */
export function executionJson(e: JobExecution | ExecutionDetails) {
  return {
    id: e.id,
    jobName: e.jobName,
    instanceId: e.instanceId,
    status: e.status,
    exitStatus: { code: e.exitStatus.code, description: e.exitStatus.description },
    parameters: e.params,
    createTime: iso(e.createTime),
    startTime: iso(e.startTime),
    endTime: iso(e.endTime),
    node: e.node,
    ...('steps' in e ? { steps: e.steps.map(stepJson) } : {}),
  };
}

/** A cluster node in the CLI's JSON shape (SPEC section 7). */
export function nodeJson(n: NodeInfo) {
  return { name: n.name, status: n.status, lastHeartbeat: n.lastHeartbeat.toISOString(), jobs: n.jobs, running: n.running };
}

export function jobJson(j: JobDefinition) {
  return {
    name: j.name,
    description: j.description ?? null,
    restartable: j.restartable,
    parameters: Object.fromEntries(
      Object.entries(j.params).map(([name, spec]) => [
        name,
        {
          type: spec.kind,
          default: spec.default instanceof Date ? spec.default.toISOString() : (spec.default ?? null),
          required: spec.required,
          identifying: spec.identifying,
        },
      ]),
    ),
  };
}

/** Prints rows as an aligned text table. */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

const secs = (e: { startTime: Date | null; endTime: Date | null }) =>
  e.startTime && e.endTime ? `${((e.endTime.getTime() - e.startTime.getTime()) / 1000).toFixed(1)}s` : null;

export function executionText(e: ExecutionDetails): string {
  const params = Object.entries(e.params).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [
    `execution ${e.id}  job ${e.jobName}  instance ${e.instanceId}  ${e.status} (${e.exitStatus.code})`,
    `  parameters: ${params || '(none)'}`,
    `  node: ${e.node ?? '-'}   started: ${e.startTime?.toISOString() ?? '-'}   ended: ${e.endTime?.toISOString() ?? '-'}`,
  ];
  if (e.exitStatus.description) lines.push(`  exit description: ${e.exitStatus.description}`);
  if (e.steps.length) {
    lines.push(
      '',
      table(
        ['step', 'status', 'exit', 'read', 'write', 'filter', 'skip r/p/w', 'commits', 'rollbacks', 'time', 'node'],
        e.steps.map((s) => [
          s.stepName, s.status, s.exitStatus.code, s.readCount, s.writeCount, s.filterCount,
          `${s.readSkipCount}/${s.processSkipCount}/${s.writeSkipCount}`, s.commitCount, s.rollbackCount, secs(s), s.node,
        ]),
      ).replace(/^/gm, '  '),
    );
    for (const s of e.steps) if (s.exitStatus.description) lines.push(`  ${s.stepName}: ${s.exitStatus.description}`);
  }
  return lines.join('\n');
}

export function executionsText(list: JobExecution[]): string {
  if (!list.length) return 'no executions';
  return table(
    ['id', 'job', 'status', 'exit', 'created', 'time', 'node', 'parameters'],
    list.map((e) => [
      e.id, e.jobName, e.status, e.exitStatus.code, e.createTime.toISOString(), secs(e), e.node,
      Object.entries(e.params).map(([k, v]) => `${k}=${v}`).join(' '),
    ]),
  );
}
