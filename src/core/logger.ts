import pino from 'pino';

/** The structured logger Nightshift writes to (pino). */
export type Logger = pino.Logger;

/**
 * Creates the default logger: JSON lines to stderr (stdout stays free for `--json` output),
 * level from NIGHTSHIFT_LOG_LEVEL (default `info`).
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    { level: options.level ?? process.env.NIGHTSHIFT_LOG_LEVEL ?? 'info', name: options.name ?? 'nightshift', base: undefined },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that logs nothing (what one-shot CLI commands use unless `--verbose`). */
export const silentLogger: Logger = pino({ level: 'silent' });
