import cliProgress from 'cli-progress';
import type { JobExecution, StepExecution } from '../core/model.ts';
import { skipCount } from '../core/model.ts';

export interface Progress {
  update(execution: JobExecution, step: StepExecution): void;
  stop(): void;
}

/**
 * Live progress of a run: a bar on an interactive terminal (stderr), plain lines every few
 * seconds otherwise. Shows items, rate, elapsed time and skips.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr, enabled = true): Progress {
  if (!enabled) return { update() {}, stop() {} };
  const started = Date.now();
  let last: { step: StepExecution; at: number } | undefined;
  const rate = (n: number) => Math.round(n / Math.max(0.001, (Date.now() - started) / 1000));
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: ' {step}  {value} items  {rate}/s  {elapsed}s  skips {skips}',
        hideCursor: true,
        fps: 10,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let begun = false;
    return {
      update(_e, step) {
        const payload = { step: step.stepName, rate: rate(step.readCount), elapsed: ((Date.now() - started) / 1000).toFixed(1), skips: skipCount(step) };
        if (!begun) {
          bar.start(Number.MAX_SAFE_INTEGER, step.readCount, payload);
          begun = true;
        } else bar.update(step.readCount, payload);
      },
      stop() {
        if (begun) bar.stop();
      },
    };
  }
  return {
    update(e, step) {
      const now = Date.now();
      if (last && last.step.stepName === step.stepName && now - last.at < 2000) return;
      last = { step, at: now };
      stream.write(
        `${e.jobName} #${e.id} ${step.stepName}: ${step.readCount} read, ${step.writeCount} written, ` +
          `${skipCount(step)} skipped, ${rate(step.readCount)}/s, ${((now - started) / 1000).toFixed(1)}s\n`,
      );
    },
    stop() {},
  };
}
