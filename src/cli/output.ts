/** The CLI's text output: tables and execution summaries. */
import type { ExecutionSummary, JobExecution } from '../core/model.ts';
import type { ExecutionDetails } from '../operator.ts';
import { redactUrls } from '../core/redact.ts';

// C0 controls (ESC among them), DEL, C1 controls (CSI among them), and the bidirectional
// overrides that make text read differently from what it is.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- as above
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * Text made safe for an operator's terminal: every control character (an escape sequence's ESC
 * among them) shown as `\uXXXX`, and the passwords of URLs hidden. Everything the CLI prints
 * goes through it; `lines` keeps newlines (for whole outputs, whose values were escaped already).
 * The `\uXXXX` form keeps JSON output valid JSON with the same values.
 */
export function terminalText(text: string, lines = false): string {
  return redactUrls(text).replace(lines ? CONTROL_BUT_NEWLINE : CONTROL, escaped);
}

/** Prints rows as an aligned text table. */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? '-' : terminalText(String(c)))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** How long ago, roughly: `0.4 s ago`, `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function ago(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s ago`;
  if (s < 120) return `${Math.round(s)} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** The partitions a node runs, by execution: `8x3,9x1` (three partitions of execution 8, one of 9). */
export function partitionsByExecution(partitions: readonly { executionId: number }[]): string {
  const counts = new Map<number, number>();
  for (const p of partitions) counts.set(p.executionId, (counts.get(p.executionId) ?? 0) + 1);
  return [...counts].map(([id, n]) => `${id}x${n}`).join(',');
}

/** Executions shown on each side of this one, among its instance's. */
const RUNS_AROUND = 5;

/** The instance's executions oldest first, this one marked; beyond a few on each side, how many more. */
function runsAround(id: number, newestFirst: readonly JobExecution[]): string {
  const runs = [...newestFirst].reverse();
  const at = Math.max(0, runs.findIndex((r) => r.id === id));
  const from = Math.max(0, at - RUNS_AROUND);
  const to = Math.min(runs.length, at + RUNS_AROUND + 1);
  const shown = runs.slice(from, to).map((r) => `#${r.id} ${r.status}${r.id === id ? ' (this one)' : ''}`);
  return [from > 0 ? `${from} earlier, ` : '', shown.join(', '), to < runs.length ? `, ${runs.length - to} later` : ''].join('');
}

const secs = (e: { startTime: Date | null; endTime: Date | null }) =>
  e.startTime && e.endTime ? `${((e.endTime.getTime() - e.startTime.getTime()) / 1000).toFixed(1)}s` : null;

/**
 * An execution with its steps; with `runs` (its instance's executions, newest first), also the
 * instance's other executions, oldest first: where a restart or failover went on from, or to.
 */
export function executionText(e: ExecutionDetails, runs: readonly JobExecution[] = []): string {
  const params = terminalText(Object.entries(e.params).map(([k, v]) => `${k}=${v}`).join(' '));
  const lines = [
    `execution ${e.id}  job ${e.jobName}  instance ${e.instanceId}  ${e.status} (${e.exitStatus.code})`,
    `  parameters: ${params || '(none)'}`,
    `  node: ${terminalText(e.node ?? '-')}   started: ${e.startTime?.toISOString() ?? '-'}   ended: ${e.endTime?.toISOString() ?? '-'}`,
  ];
  if (runs.length > 1) lines.push(`  executions of instance ${e.instanceId}: ${runsAround(e.id, runs)}`);
  if (e.exitStatus.description) lines.push(`  exit description: ${terminalText(e.exitStatus.description)}`);
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
    for (const s of e.steps) if (s.exitStatus.description) lines.push(`  ${s.stepName}: ${terminalText(s.exitStatus.description)}`);
  }
  return lines.join('\n');
}

/**
 * An execution's status in a list: with the newest later execution of its instance when there is
 * one (`FAILED → #12 COMPLETED`: a failure a restart has since completed needs nothing more).
 */
function listedStatus(e: JobExecution & Partial<Pick<ExecutionSummary, 'restartedAs'>>): string {
  return e.restartedAs ? `${e.status} → #${e.restartedAs.id} ${e.restartedAs.status}` : e.status;
}

/** Executions as a table, newest first; a restarted one's status names its instance's newest execution. */
export function executionsText(list: (JobExecution & Partial<Pick<ExecutionSummary, 'restartedAs'>>)[]): string {
  if (!list.length) return 'no executions';
  return table(
    ['id', 'job', 'status', 'exit', 'created', 'time', 'node', 'parameters'],
    list.map((e) => [
      e.id, e.jobName, listedStatus(e), e.exitStatus.code, e.createTime.toISOString(), secs(e), e.node,
      Object.entries(e.params).map(([k, v]) => `${k}=${v}`).join(' '),
    ]),
  );
}
