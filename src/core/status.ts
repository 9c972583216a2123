import { UsageError } from './errors.ts';
import { redactUrls } from './redact.ts';

/** The lifecycle state of a job or step execution, as in Spring Batch. */
export type BatchStatus =
  | 'STARTING'
  | 'STARTED'
  | 'STOPPING'
  | 'STOPPED'
  | 'FAILED'
  | 'COMPLETED'
  | 'ABANDONED'
  | 'UNKNOWN';

export const BATCH_STATUSES: readonly BatchStatus[] = [
  'STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FAILED', 'COMPLETED', 'ABANDONED', 'UNKNOWN',
];

/** Statuses of an execution that is still in progress (owned or waiting to be owned). */
export const RUNNING_STATUSES: readonly BatchStatus[] = ['STARTING', 'STARTED', 'STOPPING'];

export function isRunning(status: BatchStatus): boolean {
  return RUNNING_STATUSES.includes(status);
}

// Ordered from best to worst, for aggregating split flows and partitions.
const SEVERITY: Record<BatchStatus, number> = {
  COMPLETED: 0, STARTING: 1, STARTED: 2, STOPPING: 3, STOPPED: 4, FAILED: 5, ABANDONED: 6, UNKNOWN: 7,
};

export function worstStatus(statuses: Iterable<BatchStatus>): BatchStatus {
  let worst: BatchStatus = 'COMPLETED';
  for (const s of statuses) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

/**
 * How an execution ended, as a code (COMPLETED, FAILED, NOOP, STOPPED or any custom code)
 * plus a description. Distinct from BatchStatus: flows branch on exit codes.
 */
export interface ExitStatus {
  /** The code transitions and `exitCodes` match on. */
  readonly code: string;
  /** Why, for people: a failure's message, or empty. */
  readonly description: string;
}

/**
 * Makes an ExitStatus, e.g. for a tasklet to end its step with (`return exitStatus('NOOP', 'nothing new')`)
 * or for an `afterStep` listener to replace the step's.
 */
export function exitStatus(code: string, description = ''): ExitStatus {
  return { code, description };
}

/**
 * The exit status as the repository keeps it: the passwords of URLs in its description hidden.
 * A failure's message is its description, and the repository serves it to every viewer of the
 * API and console, which see no other secret.
 */
export function storedExitStatus(exit: ExitStatus): ExitStatus {
  const description = storedDescription(exit.description);
  return description === exit.description ? exit : { code: exit.code, description };
}

/**
 * An exit description as the repository keeps it (see {@link storedExitStatus}): for the
 * descriptions written without an ExitStatus (a node's release of what it could not run, an
 * orphan's failure, a released partition), which may quote a driver's error.
 */
export function storedDescription(description: string): string {
  return redactUrls(description);
}

export const ExitStatuses = {
  UNKNOWN: exitStatus('UNKNOWN'),
  EXECUTING: exitStatus('EXECUTING'),
  COMPLETED: exitStatus('COMPLETED'),
  NOOP: exitStatus('NOOP'),
  FAILED: exitStatus('FAILED'),
  STOPPED: exitStatus('STOPPED'),
} as const;

/** The default exit code for a batch status when nothing more specific was set. */
export function exitCodeFor(status: BatchStatus): string {
  switch (status) {
    case 'COMPLETED': return 'COMPLETED';
    case 'FAILED': return 'FAILED';
    case 'STOPPED': return 'STOPPED';
    case 'ABANDONED': return 'ABANDONED';
    case 'STARTING':
    case 'STARTED':
    case 'STOPPING': return 'EXECUTING';
    default: return 'UNKNOWN';
  }
}

const PATTERN_CHARS = /^[A-Za-z0-9_\-.:*?]+$/;

/**
 * Validates an exit-status pattern: letters, digits, `_-.:`, and the wildcards `*` (any run)
 * and `?` (one character).
 */
export function assertExitPattern(pattern: string, where: string): void {
  if (typeof pattern !== 'string' || pattern.length === 0 || !PATTERN_CHARS.test(pattern)) {
    throw new UsageError(
      `${where}: invalid exit-status pattern ${JSON.stringify(pattern)} ` +
        `(use exit codes with the wildcards * and ?, e.g. "COMPLETED", "FAIL*", "C?DE")`,
    );
  }
}

export function matchesExitPattern(pattern: string, code: string): boolean {
  // Iterative glob match with backtracking on the last '*'.
  let p = 0, c = 0, star = -1, mark = 0;
  while (c < code.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === code[c])) { p++; c++; }
    else if (p < pattern.length && pattern[p] === '*') { star = p++; mark = c; }
    else if (star >= 0) { p = star + 1; c = ++mark; }
    else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Compares two exit-status patterns by specificity, with Spring Batch's rule (its
 * DefaultStateTransitionComparator): negative when `a` is the more generic one. When several
 * patterns match an exit code, the most specific wins:
 *
 * - a pattern without `*` is more specific than any pattern with one;
 * - between patterns with `*`, the one with more `*` is the more specific (`**` beats `*`);
 * - then the one with fewer `?`;
 * - then, for patterns with wildcards, the longer one;
 * - then the alphabetically smaller one (`CAT?` beats `DOG?`).
 *
 * So `COMPLETED` > `COMPLETE?` > `C??` > `*ED*` > `C*` > `*`.
 */
export function compareExitPatterns(a: string, b: string): number {
  if (a === b) return 0;
  const starsA = count(a, '*');
  const starsB = count(b, '*');
  if ((starsA > 0) !== (starsB > 0)) return starsA > 0 ? -1 : 1;
  if (starsA !== starsB) return starsA < starsB ? -1 : 1;
  const questionsA = count(a, '?');
  const questionsB = count(b, '?');
  if (questionsA !== questionsB) return questionsA > questionsB ? -1 : 1;
  if (a.length !== b.length && (starsA > 0 || questionsA > 0)) return a.length < b.length ? -1 : 1;
  return a < b ? 1 : -1;
}

function count(text: string, ch: string): number {
  let n = 0;
  for (const c of text) if (c === ch) n++;
  return n;
}

/** The most specific of `patterns` that matches `code` (see {@link compareExitPatterns}), if any. */
export function mostSpecificMatch(patterns: Iterable<string>, code: string): string | undefined {
  let best: string | undefined;
  for (const p of patterns) {
    if (matchesExitPattern(p, code) && (best === undefined || compareExitPatterns(p, best) > 0)) best = p;
  }
  return best;
}
