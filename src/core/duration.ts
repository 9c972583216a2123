import { UsageError } from './errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A duration such as `30d`, `12h`, `90m`, `45s`, `500ms` or `2w`, in milliseconds. `what` names
 * the option or setting in the error a bad value gets.
 */
export function parseDuration(what: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (!m) throw new UsageError(`${what}: expected a duration such as 30d, 12h, 90m or 45s, got ${JSON.stringify(text)}`);
  const ms = Math.round(Number(m[1]) * UNITS[m[2]]);
  if (!Number.isSafeInteger(ms)) throw new UsageError(`${what}: ${JSON.stringify(text)} is too long`);
  return ms;
}

/**
 * Whole milliseconds as a duration that {@link parseDuration} reads back to the same number: in
 * the largest unit that divides them, e.g. `5m`, `90s`, `36h`, `1500ms`.
 */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's']) {
    if (ms >= UNITS[unit] && ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

const WORDS: Record<string, string> = { ms: 'millisecond', s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };

/** Whole milliseconds in words, in the unit {@link formatDuration} picks: `1 minute`, `30 days`. */
export function spellDuration(ms: number): string {
  const [, n, unit] = /^(\d+)(\D+)$/.exec(formatDuration(ms))!;
  return `${n} ${WORDS[unit]}${n === '1' ? '' : 's'}`;
}
