/**
 * How `nightshift node` reads the signals it gets (src/cli/node-signals.ts), signal by signal:
 * the first starts the graceful shutdown, one right after it is the same request, a later one
 * hands over now, and one after that exits at once. The processes' side of it (real signals,
 * hand-over, exactly once) is test/cluster/node-signals.test.ts.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { nodeSignals } from '../../src/cli/node-signals.ts';

function harness(sameSignalMs: number) {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk)) as { level: number; msg: string }), done()) }));
  const calls: string[] = [];
  const signals = nodeSignals({
    stopTimeoutMs: 60_000, logger, running: () => 2, sameSignalMs,
    handOverNow: () => calls.push('handOverNow'), exitNow: () => calls.push('exitNow'),
  });
  return { signals, calls, msgs: () => lines.map((l) => l.msg) };
}

describe('node signals', () => {
  it('first: graceful shutdown, said at once; second: hand over now; third: exit now', async () => {
    const { signals, calls, msgs } = harness(0);
    let stopped = false;
    void signals.stopped.then(() => (stopped = true));
    signals.onSignal('SIGTERM');
    await Promise.resolve();
    expect(stopped).toBe(true);
    expect(msgs()).toEqual(['received SIGTERM: taking no more work, stopping 2 running executions at their next chunk boundary (up to 60000 ms; signal again to hand them over now)']);
    expect([calls, signals.now()]).toEqual([[], false]);
    signals.onSignal('SIGINT');
    expect([calls, signals.now()]).toEqual([['handOverNow'], true]);
    expect(msgs()[1]).toMatch(/^received SIGINT again: handing over 2 running executions now/);
    signals.onSignal('SIGTERM');
    expect(calls).toEqual(['handOverNow', 'exitNow']);
    expect(msgs()[2]).toMatch(/^received SIGTERM a third time: exiting now/);
  });

  it('a second signal right after the first is the same request (a pid and its group signalled together)', () => {
    const { signals, calls, msgs } = harness(60_000);
    signals.onSignal('SIGTERM');
    signals.onSignal('SIGTERM');
    signals.onSignal('SIGTERM');
    expect([calls, signals.now()]).toEqual([[], false]);
    expect(msgs().slice(1)).toEqual(Array(2).fill(expect.stringMatching(/^received SIGTERM again within 60000 ms of the first: taken as the same request/)));
  });
});
