import pino from 'pino';
import { redactUrls } from './redact.ts';

/** The structured logger Nightshift writes to (pino). */
export type Logger = pino.Logger;

/**
 * Creates the default logger: JSON lines to stderr (stdout stays free for `--json` output),
 * level from NIGHTSHIFT_LOG_LEVEL (default `info`).
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.NIGHTSHIFT_LOG_LEVEL ?? 'info', name: options.name ?? 'nightshift', base: undefined,
      // No database password reaches a log line, whichever field or message holds the URL.
      hooks: { logMethod(args, method) { method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrls(a) : a)) as Parameters<typeof method>); } },
      formatters: { log: (object) => redactDeep(object) as Record<string, unknown> },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that logs nothing (what one-shot CLI commands use unless `--verbose`). */
export const silentLogger: Logger = pino({ level: 'silent' });

/** `value` with the URL passwords of its strings hidden (objects a few levels deep; errors by message and stack). */
function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrls(value);
  if (value instanceof Error) return { ...redactDeep({ ...value }, depth) as object, type: value.name, message: redactUrls(value.message), stack: redactUrls(value.stack ?? '') };
  if (depth > 4 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
  return out;
}
