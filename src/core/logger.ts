import pino from 'pino';
// The types by name, not through the default import: the emitted .d.ts then imports them with
// `import type { ... }`, which a consumer's tsc reads without esModuleInterop (a default import
// of pino, a CommonJS module, is error TS1259 under "module": "CommonJS" without it).
import type { Bindings, ChildLoggerOptions, DestinationStream, LogFn, LoggerOptions, Logger as PinoLogger } from 'pino';
import { redactArgs, redactValue } from './redact.ts';
import { envLogLevel } from './log-level.ts';

export { LOG_LEVELS, LOG_LEVEL_ENV, envLogLevel } from './log-level.ts';

/** The structured logger Nightshift writes to (pino). */
export type Logger = PinoLogger;

/**
 * Creates the default logger: JSON lines to stderr (stdout stays free for `--json` output),
 * level from NIGHTSHIFT_LOG_LEVEL (default `info`). `destination`: where the lines go instead of
 * stderr.
 */
export function createLogger(options: { level?: string | undefined; name?: string | undefined; destination?: DestinationStream | undefined } = {}): Logger {
  return ownLogger(
    { level: options.level ?? envLogLevel() ?? 'info', name: options.name ?? 'nightshift', base: undefined },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/**
 * A pino logger that hides URL passwords itself, whichever part of a line holds the URL: the
 * arguments of a call (message, interpolated values, the merged object, errors) through the
 * logMethod hook, the fields again after pino merged them through the log formatter, and the
 * bindings and `msgPrefix` of its children through its `child` (pino writes a child's bindings to
 * text when it makes the child, and puts the prefix before the message after the hook ran).
 */
function ownLogger(options: LoggerOptions, destination?: DestinationStream): Logger {
  const all: LoggerOptions = { ...options, hooks: { logMethod: redactHook }, formatters: { log: (object) => redactValue(object) as Record<string, unknown> } };
  const log: Logger = destination ? pino(all, destination) : pino(all);
  // An own property of the root; pino's children are made with Object.create of their parent, so they have it too.
  const child = log.child as unknown as (this: Logger, bindings: Bindings, options?: ChildLoggerOptions) => Logger;
  Object.defineProperty(log, 'child', {
    value: function redactingChild(this: Logger, bindings: Bindings, childOptions?: ChildLoggerOptions) {
      return child.call(this, redactValue(bindings) as Bindings, redactChildOptions(childOptions));
    },
    writable: true, configurable: true, enumerable: false,
  });
  return log;
}

/** A child logger's options with the URL passwords of its `msgPrefix` hidden: the same object when there are none. */
function redactChildOptions<T extends ChildLoggerOptions | undefined>(options: T): T {
  if (typeof options?.msgPrefix !== 'string') return options;
  const msgPrefix = redactValue(options.msgPrefix) as string;
  return msgPrefix === options.msgPrefix ? options : { ...options, msgPrefix };
}

/** pino's logMethod hook of Nightshift's own loggers: hides the URL passwords of a call's arguments (message, object, error). */
function redactHook(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  method.apply(this, redactArgs(args));
}

// The loggers that hide URL passwords themselves: redactingLogger's wrappers and silentLogger.
const REDACTING = new WeakSet<object>();

/**
 * `log`, if it hides URL passwords itself (a logger of {@link createLogger}, its children, or
 * what this function returned); else a view of it that does, for the lines Nightshift writes
 * through a logger the user gave. The view hides them in the arguments of each call (message,
 * interpolated values, the merged object, errors: see redactValue) and in the bindings and
 * `msgPrefix` of its children, then calls the user's logger, whose level, bindings, serializers and destination
 * apply unchanged; the user's logger itself is not changed, and their own calls to it are not
 * touched. A call at a disabled level does no work.
 */
export function redactingLogger(log: Logger): Logger {
  if (REDACTING.has(log) || ownHook(log)) return log;
  const methods = new Map<string | symbol, { of: unknown; fn: unknown }>();
  const view = new Proxy(log, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      // Level methods change when the level does (pino swaps in a no-op): look the method up at each call.
      const cached = methods.get(key);
      if (cached && (cached.of === value || isLevel(target, key))) return cached.fn;
      let fn: unknown;
      if (key === 'child') {
        fn = (bindings: Bindings, options?: ChildLoggerOptions) => redactingLogger(target.child(redactValue(bindings) as Bindings, redactChildOptions(options)));
      } else if (typeof key === 'string' && isLevel(target, key)) {
        fn = (...args: Parameters<LogFn>) => {
          if (typeof target.isLevelEnabled !== 'function' || target.isLevelEnabled(key)) {
            (Reflect.get(target, key, target) as LogFn).apply(target, redactArgs(args));
          }
        };
      } else {
        fn = (value as (...a: unknown[]) => unknown).bind(target);
      }
      methods.set(key, { of: value, fn });
      return fn;
    },
  });
  REDACTING.add(view);
  return view;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** Whether `key` is a level method of `log`: its own levels, or pino's for a logger-like object without them. */
function isLevel(log: Logger, key: string | symbol): key is string {
  if (typeof key !== 'string') return false;
  const values = (log as Partial<Logger>).levels?.values;
  return values ? key in values : LEVELS.has(key);
}

/** Whether `log` is a logger of createLogger or a child of one (pino's children share their root's hooks). */
function ownHook(log: Logger): boolean {
  const hooks = (log as unknown as Record<symbol, { logMethod?: unknown } | undefined>)[pino.symbols.hooksSym];
  return hooks?.logMethod === redactHook;
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
export const silentLogger: Logger = ownLogger({ level: 'silent' });
REDACTING.add(silentLogger);

