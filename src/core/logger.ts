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

/**
 * `log.child(bindings)`, made when first needed: a run creates a child logger per execution and
 * step, and most of them never write a line at the usual levels (pino's child is costly to make).
 */
export function lazyChild(log: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(log, {
    get(_target, key) {
      if (!child && typeof key === 'string') {
        // A disabled level's call needs no child; nor does a question about levels (the child's are the parent's).
        if (key in log.levels.values && !log.isLevelEnabled(key)) return noop;
        if (PARENT_KEYS.has(key)) return bound(log, key);
      }
      child ??= log.child(bindings);
      return bound(child, key);
    },
  });
}

const PARENT_KEYS = new Set(['levels', 'level', 'levelVal', 'isLevelEnabled']);

function bound(target: Logger, key: string | symbol): unknown {
  const value: unknown = Reflect.get(target, key, target);
  return typeof value === 'function' ? value.bind(target) : value;
}

const noop = () => undefined;

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
