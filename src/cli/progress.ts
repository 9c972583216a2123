import cliProgress from 'cli-progress';
import type { JobExecution, StepExecution } from '../core/model.ts';
import { skipCount } from '../core/model.ts';
import { PARTITION_SUFFIX, latestPartitions } from '../core/partitions.ts';
import { progressOf, sumProgress, type StepProgress } from '../core/progress.ts';

export interface Progress {
  update(execution: JobExecution, step: StepExecution): void;
  stop(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /**
   * When the stream is not a terminal: how often a progress line is written (one more comes at
   * the end). Default 5000 ms, or NIGHTSHIFT_PROGRESS_INTERVAL_MS.
   */
  intervalMs?: number;
  /** The clock (for tests). Default Date.now. */
  now?: () => number;
}

/** What one line (or the bar) shows: a step, or a partitioned step's partitions run here. */
interface View {
  job: string;
  executionId: number;
  step: string;
  /** A partitioned step: other nodes may run some of its partitions, and the counts are this process's. */
  partitioned: boolean;
  progress: StepProgress | null;
  read: number;
  written: number;
  skipped: number;
  /** Items per second and, for bytes, bytes per second; undefined until measurable. */
  rate: number | undefined;
  /** Seconds left, when the total is known and the rate measured. */
  eta: number | undefined;
  elapsed: number;
}

const DEFAULT_INTERVAL_MS = 5000;

/**
 * Live progress of a run: a bar on an interactive terminal (stderr), lines every few seconds and
 * one at the end otherwise. Shows done of total (items, or bytes of an input file) with rate and
 * ETA when the reader knows its total, else a count of items; and items read, written and skipped.
 */
export function createProgress(stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } = process.stderr, enabled = true, options: ProgressOptions = {}): Progress {
  if (!enabled) return { update() {}, stop() {} };
  const tracker = createTracker(options.now ?? Date.now);
  if (stream.isTTY) return barProgress(stream, tracker);
  const envInterval = Number(process.env.NIGHTSHIFT_PROGRESS_INTERVAL_MS);
  const intervalMs = options.intervalMs ?? (envInterval > 0 ? envInterval : DEFAULT_INTERVAL_MS);
  let latest: View | undefined;
  let logged: string | undefined;
  const log = () => {
    if (!latest) return;
    const key = `${latest.step} ${latest.progress?.done} ${latest.read} ${latest.written} ${latest.skipped}`;
    if (key === logged) return;
    logged = key;
    stream.write(progressLine(latest) + '\n');
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    update(e, step) {
      latest = tracker.update(e, step);
      if (!timer) {
        timer = setInterval(() => {
          if (latest) latest = tracker.refresh(latest);
          log();
        }, intervalMs);
        timer.unref();
      }
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      if (latest) latest = tracker.refresh(latest);
      log();
      // The next run (the demo runs several with one display) counts from here, afresh.
      latest = undefined;
      logged = undefined;
      tracker.reset();
    },
  };
}

function barProgress(stream: NodeJS.WritableStream, tracker: Tracker): Progress {
  const bar = new cliProgress.SingleBar({
    stream,
    format: (_options, _params, payload: { view?: View }) => (payload.view ? barLine(payload.view) : ''),
    hideCursor: true,
    fps: 10,
    noTTYOutput: false,
  });
  let begun = false;
  return {
    update(e, step) {
      const view = tracker.update(e, step);
      const total = view.progress?.total ?? 0;
      const value = view.progress?.done ?? view.read;
      if (!begun) {
        bar.start(total, value, { view });
        begun = true;
      } else {
        bar.setTotal(total);
        bar.update(value, { view });
      }
    },
    stop() {
      if (begun) bar.stop();
      begun = false;
      tracker.reset();
    },
  };
}

interface Tracker {
  /** Takes a commit's news; returns the view of the step it belongs to. */
  update(e: JobExecution, step: StepExecution): View;
  /** The view again, with the time moved on. */
  refresh(view: View): View;
  /** Forgets what it followed: the next run's elapsed time and rates count from now (its launch, as the CLI and the demo stop the display at each run's end). */
  reset(): void;
}

/** A rate measured over less than this is not shown (nor an ETA from it): a first commit's is noise. */
const MIN_RATE_SECONDS = 0.25;

/**
 * Follows the steps of a run as commits come: a partitioned step's partitions (those run in this
 * process) are added up under their manager's name. A step's rate is over the step so far: its
 * items since it began (when the step before it last committed, or the run began), its bytes
 * since it was first seen; so the rate, the ETA from it and the elapsed time agree.
 */
function createTracker(clock: () => number): Tracker {
  let started = clock();
  /** The newest news of each step execution, by the name it is shown under. */
  const groups = new Map<string, { first: { at: number; done: number | undefined }; steps: Map<number, Snapshot> }>();
  /** When the step shown before the current one last committed: when the current one began. */
  let previousEnd = started;
  let lastUpdate = started;
  let current: string | undefined;
  let execution: number | undefined;
  const reset = (from = clock()) => {
    started = from;
    groups.clear();
    previousEnd = lastUpdate = started;
    current = execution = undefined;
  };
  const view = (job: string, executionId: number, name: string): View => {
    const group = groups.get(name)!;
    const steps = latestPartitions([...group.steps.values()]);
    const partitioned = steps.some((s) => PARTITION_SUFFIX.test(s.stepName));
    let progress = sumProgress(steps.map((s) => s.progress));
    // Partitions still queued (or run elsewhere) are not seen here: the total is not known.
    if (progress && partitioned) progress = { ...progress, total: null };
    const read = steps.reduce((n, s) => n + s.read, 0);
    const now = clock();
    const seconds = (now - group.first.at) / 1000;
    const runItems = steps.reduce((n, s) => n + s.read + s.readSkips, 0);
    // Items: those this run read since the step began; bytes: since the step was first seen.
    const rate =
      seconds < MIN_RATE_SECONDS
        ? undefined
        : progress?.unit === 'bytes'
          ? group.first.done !== undefined && progress.done > group.first.done
            ? (progress.done - group.first.done) / seconds
            : undefined
          : runItems > 0
            ? runItems / seconds
            : undefined;
    const left = progress && progress.total !== null ? progress.total - progress.done : undefined;
    return {
      job, executionId, step: name, partitioned, progress, read,
      written: steps.reduce((n, s) => n + s.written, 0),
      skipped: steps.reduce((n, s) => n + s.skipped, 0),
      rate,
      eta: left !== undefined && left > 0 && rate ? left / rate : left === 0 ? 0 : undefined,
      elapsed: (now - started) / 1000,
    };
  };
  return {
    update(e, step) {
      // Another execution shown by the same display (without a stop between): it counts afresh.
      if (execution !== undefined && e.id !== execution) reset(lastUpdate);
      execution = e.id;
      const name = step.stepName.replace(PARTITION_SUFFIX, '');
      const now = clock();
      if (name !== current) {
        // The new step began when the one before it last committed (not now, at its own first commit).
        if (current !== undefined) previousEnd = lastUpdate;
        current = name;
      }
      lastUpdate = now;
      let group = groups.get(name);
      const progress = progressOf(step.context);
      if (!group) {
        // For items the run's own count is known from the counters: the step began when the one before it last committed.
        group = { first: { at: progress?.unit === 'bytes' ? now : previousEnd, done: progress?.unit === 'bytes' ? progress.done : undefined }, steps: new Map() };
        groups.set(name, group);
      }
      group.steps.set(step.id, {
        id: step.id, stepName: step.stepName, progress, read: step.readCount, readSkips: step.readSkipCount,
        written: step.writeCount, skipped: skipCount(step),
      });
      return view(e.jobName, e.id, name);
    },
    refresh: (v) => view(v.job, v.executionId, v.step),
    reset: () => reset(),
  };
}

interface Snapshot {
  id: number;
  stepName: string;
  progress: StepProgress | null;
  read: number;
  readSkips: number;
  written: number;
  skipped: number;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

/** Bytes in B, kB, MB, GB (powers of 1000). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** A duration as 45s, 3m05s or 2h07m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const amount = (p: StepProgress, n: number) => (p.unit === 'bytes' ? formatBytes(n) : count(n));

/** `4,500 of 20,000 items (22.5%)`, `12.3 MB of 45.6 MB (27.0%)`, or `4,500 items`. */
function doneText(v: View): string {
  const p = v.progress;
  if (!p) return `${count(v.read)} items`;
  const unit = p.unit === 'items' ? ' items' : '';
  if (p.total === null) return `${amount(p, p.done)}${unit}`;
  const pct = p.total > 0 ? (100 * p.done) / p.total : 100;
  return `${amount(p, p.done)} of ${amount(p, p.total)}${unit} (${pct.toFixed(1)}%)`;
}

function rateText(v: View): string | undefined {
  if (v.rate === undefined) return undefined;
  return v.progress?.unit === 'bytes' ? `${formatBytes(v.rate)}/s` : `${count(v.rate)} items/s`;
}

function etaText(v: View): string | undefined {
  return v.eta !== undefined && v.eta > 0 ? `ETA ${formatDuration(Math.ceil(v.eta))}` : undefined;
}

/** A line of the log: `count #3 count: 4,500 of 20,000 items (22.5%), 1,234 items/s, ETA 13s; 4,500 read, 4,500 written, 0 skipped, 3.6s`. */
function progressLine(v: View): string {
  const head = [doneText(v), rateText(v), etaText(v)].filter(Boolean).join(', ');
  return `${v.job} #${v.executionId} ${stepLabel(v)}: ${head}; ${count(v.read)} read, ${count(v.written)} written, ${count(v.skipped)} skipped, ${v.elapsed.toFixed(1)}s`;
}

const stepLabel = (v: View): string => (v.partitioned ? `${v.step} (partitions run here)` : v.step);

const BAR_WIDTH = 24;

/** The terminal's line: a bar when the total is known, else the count. */
function barLine(v: View): string {
  const p = v.progress;
  const share = p && p.total !== null ? (p.total > 0 ? Math.min(1, p.done / p.total) : 1) : undefined;
  const bar = share === undefined ? '' : ` ${'█'.repeat(Math.round(share * BAR_WIDTH))}${'░'.repeat(BAR_WIDTH - Math.round(share * BAR_WIDTH))}`;
  const parts = [doneText(v), rateText(v), etaText(v), `${formatDuration(v.elapsed)} elapsed`];
  if (v.skipped) parts.push(`${count(v.skipped)} skipped`);
  return ` ${stepLabel(v)}${bar} ${parts.filter(Boolean).join(' | ')}`;
}
