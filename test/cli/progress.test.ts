/**
 * The progress `nightshift run` and `restart` show: on a terminal a bar with done of total, rate
 * and ETA (createProgress on a fake terminal stream); otherwise lines every few seconds and one
 * at the end, from the real command with stderr a pipe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.ts';
import type { JobExecution, StepExecution } from '../../src/core/model.ts';
import { backends } from '../support/backends.ts';
import { writePeopleCsv } from './csv-data.ts';
import { cliFor } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-cli-progress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The progress lines of a run's stderr (what comes after them is the run's summary). */
const progressLines = (stderr: string, prefix: string) => stderr.split('\n').filter((l) => l.startsWith(prefix));
/** The `done` of each `N of M items` line, in order. */
const doneOf = (lines: string[]) => lines.map((l) => Number(/: ([\d,]+) (?:of|items)/.exec(l)![1].replace(/,/g, '')));

describe.each(backends())('nightshift run progress, stderr not a terminal ($name)', (backend) => {
  afterAll(() => backend.cleanup());
  // Lines every 250 ms; the run takes at least 2 s (400 items, 5 ms each), however fast the machine.
  const env = { NIGHTSHIFT_PROGRESS_INTERVAL_MS: '250' };

  it('logs done of total with rate and ETA every few seconds, and a last line at the end', async () => {
    const cli = cliFor(backend.freshUrl('cli-progress'));
    const r = await cli.run(['run', 'count', 'items=400', 'chunk=20', 'delayMs=5', 'tag=p'], { env });
    expect(r.code, r.stderr).toBe(0);
    const lines = progressLines(r.stderr, 'count #1 count: ');
    expect(lines.length, r.stderr).toBeGreaterThan(2);
    for (const l of lines) expect(l).toMatch(/^count #1 count: [\d,]+ of 400 items \(\d+\.\d%\), [\d,]+ items\/s(, ETA \w+)?; [\d,]+ read, [\d,]+ written, 0 skipped, [\d.]+s$/);
    // Done only grows, the ones before the end say how long is left, and the last is the end.
    const done = doneOf(lines);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(lines.slice(0, -1).some((l) => / ETA \w+;/.test(l) && !l.includes(' 400 of 400'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^count #1 count: 400 of 400 items \(100\.0%\), [\d,]+ items\/s; 400 read, 400 written, 0 skipped, /);
  });

  it('a restart goes on from the checkpoint: done continues, the rate counts only this run', async () => {
    const cli = cliFor(backend.freshUrl('cli-progress-restart'));
    const failed = await cli.run(['run', 'count', 'items=300', 'chunk=50', 'failAt=170', 'tag=r'], { env });
    expect(failed.code).toBe(1);
    // The last line is what committed: 3 chunks of 50.
    expect(progressLines(failed.stderr, 'count #1 count: ').at(-1)).toMatch(/^count #1 count: 150 of 300 items \(50\.0%\).*; 150 read, 150 written, 0 skipped, /);
    const restarted = await cli.run(['restart', '1'], { env });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(progressLines(restarted.stderr, 'count #2 count: ').at(-1)).toMatch(/^count #2 count: 300 of 300 items \(100\.0%\).*; 150 read, 150 written, 0 skipped, /);
  });

  it('a file import goes by bytes; a partitioned step sums its partitions (no total: not all are seen), counted once', async () => {
    const cli = cliFor(backend.freshUrl('cli-progress-kinds'));
    const csv = join(dir, `people-${backend.name}.csv`);
    await writePeopleCsv(csv, 3000, () => undefined);
    const imported = await cli.run(['run', 'import-csv', `input=${csv}`, 'chunk=500'], { env });
    expect(imported.code, imported.stderr).toBe(0);
    expect(progressLines(imported.stderr, 'import-csv #1 import: ').at(-1)).toMatch(
      /^import-csv #1 import: [\d.]+ kB of [\d.]+ kB \(100\.0%\)(, [\d.]+ [kMG]?B\/s)?; 3,000 read, 3,000 written, 0 skipped, /,
    );
    const parts = await cli.run(['run', 'partitioned-count', 'items=1000', 'grid=4', 'tag=pc'], { env });
    expect(parts.code, parts.stderr).toBe(0);
    expect(progressLines(parts.stderr, 'partitioned-count #2 count (partitions run here): ').at(-1)).toMatch(/^partitioned-count #2 count \(partitions run here\): 1,000 items(, [\d,]+ items\/s)?; 1,000 read, 1,000 written, 0 skipped, /);
    expect(parts.stderr).not.toMatch(/partition\d/);
  });
});

describe('the progress bar on a terminal', () => {
  /** A terminal stream that records what is written to it. */
  function fakeTerminal() {
    const writes: string[] = [];
    return {
      isTTY: true,
      columns: 160,
      writes,
      write(chunk: string | Uint8Array) {
        writes.push(String(chunk));
        return true;
      },
      on() {
        return this;
      },
      removeListener() {
        return this;
      },
      text: () => writes.join(''),
    };
  }

  const execution = { id: 7, jobName: 'import' } as JobExecution;
  const step = (id: number, name: string, read: number, progress: unknown): StepExecution =>
    ({ id, stepName: name, readCount: read, writeCount: read, readSkipCount: 0, processSkipCount: 0, writeSkipCount: 1, context: progress ? { 'ns.progress': progress } : {} }) as unknown as StepExecution;

  it('shows a bar with done of total, the rate and the ETA, and ends at 100%', () => {
    const term = fakeTerminal();
    let now = 1_000_000;
    const progress = createProgress(term as unknown as NodeJS.WriteStream, true, { now: () => now });
    now += 10_000;
    progress.update(execution, step(1, 'load', 2500, { unit: 'items', done: 2500, total: 10_000 }));
    // 2,500 items in 10 s: 250 items/s, 7,500 left: 30 s.
    expect(term.text()).toMatch(/ load █{6}░{18} 2,500 of 10,000 items \(25\.0%\) \| 250 items\/s \| ETA 30s \| 10s elapsed \| 1 skipped/);
    now += 30_000;
    progress.update(execution, step(1, 'load', 10_000, { unit: 'items', done: 10_000, total: 10_000 }));
    progress.stop();
    expect(term.text()).toMatch(/ load █{24} 10,000 of 10,000 items \(100\.0%\) \| 250 items\/s \| 40s elapsed/);
    expect(term.text().endsWith('\n') || term.text().includes('\x1B[?25h')).toBe(true);
  });

  it('counts items when the total is unknown, and shows bytes of a file in kB/MB', () => {
    const term = fakeTerminal();
    let now = 0;
    const progress = createProgress(term as unknown as NodeJS.WriteStream, true, { now: () => now });
    now += 2000;
    progress.update(execution, step(1, 'gen', 700, { unit: 'items', done: 700, total: null }));
    expect(term.text()).toMatch(/ gen 700 items \| 350 items\/s \| 2s elapsed/);
    expect(term.text()).not.toContain('█');
    now += 1000;
    progress.update(execution, step(2, 'file', 100, { unit: 'bytes', done: 1_000_000, total: 4_000_000 }));
    now += 1000;
    progress.update(execution, step(2, 'file', 300, { unit: 'bytes', done: 3_000_000, total: 4_000_000 }));
    progress.stop();
    // 2 MB in the second since the step was first seen: 2 MB/s, 1 MB left.
    expect(term.text()).toMatch(/ file █{18}░{6} 3\.0 MB of 4\.0 MB \(75\.0%\) \| 2\.0 MB\/s \| ETA 1s \| 4s elapsed/);
  });
});

describe('progress rates and ETAs', () => {
  /** A log stream (not a terminal) that keeps its lines; lines come at stop (the interval is long). */
  function logStream() {
    const lines: string[] = [];
    return { lines, write: (chunk: string) => (lines.push(...String(chunk).split('\n').filter(Boolean)), true) };
  }
  const exec = (id: number) => ({ id, jobName: 'count' }) as JobExecution;
  const at = (id: number, name: string, read: number, done: number, total: number): StepExecution =>
    ({ id, stepName: name, readCount: read, writeCount: read, readSkipCount: 0, processSkipCount: 0, writeSkipCount: 0, context: { 'ns.progress': { unit: 'items', done, total } } }) as unknown as StepExecution;
  const rateOf = (line: string) => Number(/, ([\d,]+) items\/s/.exec(line)?.[1].replace(/,/g, ''));
  const etaOf = (line: string) => /ETA (\w+)/.exec(line)?.[1];

  it('one display over several runs (as the demo): each run counts from its own start, the rate and ETA agree', () => {
    const out = logStream();
    let now = 0;
    const progress = createProgress(out as unknown as NodeJS.WriteStream, true, { now: () => now, intervalMs: 3_600_000 });
    // A first run of 20 s.
    now = 20_000;
    progress.update(exec(1), at(1, 'import', 20_000, 20_000, 20_000));
    progress.stop();
    // The second run is launched at once and commits 1,000 items every 0.5 s: 2,000 items/s.
    for (let i = 1; i <= 3; i++) {
      now += 500;
      progress.update(exec(2), at(2, 'count', 1000 * i, 1000 * i, 10_000));
    }
    progress.stop();
    const line = out.lines.at(-1)!;
    expect(line).toMatch(/^count #2 count: 3,000 of 10,000 items \(30\.0%\), 2,000 items\/s, ETA 4s; 3,000 read, 3,000 written, 0 skipped, 1\.5s$/);
    // The restart: its own items over its own time (not the run before's step of the same name).
    for (let i = 1; i <= 2; i++) {
      now += 1000;
      progress.update(exec(3), at(3, 'count', 1000 * i, 3000 + 1000 * i, 10_000));
    }
    progress.stop();
    expect(out.lines.at(-1)).toMatch(/^count #3 count: 5,000 of 10,000 items \(50\.0%\), 1,000 items\/s, ETA 5s; 2,000 read, .* 2\.0s$/);
  });

  it('another execution on the same display, without a stop between, counts from the last commit before it', () => {
    const out = logStream();
    let now = 0;
    const progress = createProgress(out as unknown as NodeJS.WriteStream, true, { now: () => now, intervalMs: 3_600_000 });
    now = 10_000;
    progress.update(exec(1), at(1, 'count', 10_000, 10_000, 10_000));
    now = 11_000;
    progress.update(exec(2), at(2, 'count', 500, 500, 2000));
    progress.stop();
    expect(out.lines.at(-1)).toMatch(/^count #2 count: 500 of 2,000 items \(25\.0%\), 500 items\/s, ETA 3s; 500 read, .* 1\.0s$/);
  });

  it('a step begins when the step before it last committed, not at its own first commit', () => {
    const out = logStream();
    let now = 0;
    const progress = createProgress(out as unknown as NodeJS.WriteStream, true, { now: () => now, intervalMs: 3_600_000 });
    now = 4000;
    progress.update(exec(5), at(1, 'prepare', 100, 100, 100));
    // The next step's first commit, 0.5 s later, with 500 items: 1,000 items/s, not 500 in no time.
    now = 4500;
    progress.update(exec(5), at(2, 'load', 500, 500, 5000));
    progress.stop();
    const line = out.lines.at(-1)!;
    expect(rateOf(line)).toBe(1000);
    expect(etaOf(line)).toBe('5s');
  });

  it('shows no rate nor ETA until the step has run a quarter of a second', () => {
    const out = logStream();
    let now = 0;
    const progress = createProgress(out as unknown as NodeJS.WriteStream, true, { now: () => now, intervalMs: 3_600_000 });
    now = 100;
    progress.update(exec(9), at(1, 'count', 1000, 1000, 10_000));
    progress.stop();
    expect(out.lines.at(-1)).toMatch(/^count #9 count: 1,000 of 10,000 items \(10\.0%\); 1,000 read/);
  });
});

