/**
 * The log level named by NIGHTSHIFT_LOG_LEVEL, checked (a module of its own, without pino: the
 * CLI checks it for every command before it loads anything else).
 */
import { UsageError } from './errors.ts';

/** The levels a logger takes (pino's), in any case: `NIGHTSHIFT_LOG_LEVEL=INFO` is `info`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The environment variable of the default log level. */
export const LOG_LEVEL_ENV = 'NIGHTSHIFT_LOG_LEVEL';

/**
 * NIGHTSHIFT_LOG_LEVEL as a level (lower case), or undefined when it is unset or empty. A value
 * that is not a level is a {@link UsageError} naming the variable, the value and the levels
 * (pino's own error, "default level:verbose must be included in custom levels", names neither).
 */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[LOG_LEVEL_ENV];
  if (value === undefined || value.trim() === '') return undefined;
  const level = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`${LOG_LEVEL_ENV}=${JSON.stringify(value)} is not a log level: use one of ${LOG_LEVELS.join(', ')} (any case)`);
  }
  return level;
}
