/**
 * Errors a user can cause and fix: bad parameters, unknown jobs, bad files, refused launches.
 * The CLI prints their message as one line (no stack trace) and exits with code 2.
 */
export class NightshiftError extends Error {
  /** `'NightshiftError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'NightshiftError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A request that cannot be honoured as asked: bad input, unknown names, a refused launch. */
export class UsageError extends NightshiftError {
  /** `'UsageError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'UsageError';
}

/** A parameter that is unknown, missing or of the wrong type. */
export class ParameterError extends UsageError {
  /** `'ParameterError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'ParameterError';
}

/**
 * A job name this process does not know (it was not given to `createNightshift` or `startNode`,
 * or the config does not define it): a 404 for an HTTP route of yours. Its message lists the known
 * jobs, for a developer; `job` alone is the name asked for.
 */
export class UnknownJobError extends UsageError {
  /** `'UnknownJobError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'UnknownJobError';
  constructor(
    /** The job name asked for. */
    readonly job: string,
    message: string,
  ) {
    super(message);
  }
}

/** A launch refused because of the instance's state (already complete, running, not restartable...). */
export class LaunchRefusedError extends UsageError {
  /** `'LaunchRefusedError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'LaunchRefusedError';
}

/**
 * An in-process launch (`run`, `restart`, `ns.run`, `ns.start`) of a job whose `maxRunning`
 * executions already run in the cluster: nothing was created. `submit` queues the launch instead,
 * and a node starts it once one of those ends.
 */
export class MaxRunningError extends LaunchRefusedError {
  /** `'MaxRunningError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'MaxRunningError';
  constructor(
    /** The job. */
    readonly job: string,
    /** Its `maxRunning`. */
    readonly limit: number,
    /** The ids of its executions that run now (STARTED or STOPPING), oldest first. */
    readonly running: readonly number[],
  ) {
    super(
      `job ${job} allows at most ${limit} running execution${limit === 1 ? '' : 's'} (maxRunning) and ${running.length === 1 ? 'execution' : 'executions'} ` +
        `${running.join(', ')} ${running.length === 1 ? 'is' : 'are'} running: wait for ${running.length === 1 ? 'it' : 'one'} to end, or use submit to queue it`,
    );
  }
}

/**
 * The job repository's file is damaged (SQLite: SQLITE_CORRUPT, SQLITE_NOTADB, a failed quick
 * check). Nothing is read from or written to it; the CLI exits 2 naming the file.
 */
export class RepositoryCorruptError extends UsageError {
  override readonly name: string = 'RepositoryCorruptError';
}

/**
 * A job repository that was expected to exist is not there: an SQLite file (see assertRepositoryExists), or a PostgreSQL schema without its tables (openExistingDatabase):
 * opening it would create an empty one. The message names the path and says what is wrong; how
 * to point at another file is the caller's to say (the CLI adds its --db hint).
 */
export class RepositoryMissingError extends UsageError {
  override readonly name: string = 'RepositoryMissingError';
  constructor(
    /** The absolute path of the missing file (for PostgreSQL, the URL without its password). */
    readonly path: string,
    message = `no job repository at ${path} (SQLite): the file does not exist`,
  ) {
    super(message);
  }
}

/**
 * A method of a Nightshift (what createNightshift returns) called after its `close()`: the
 * operator refuses every call from then on, rather than fail later on the closed repository.
 */
export class ClosedError extends UsageError {
  /** `'ClosedError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'ClosedError';
  constructor(
    /** The method that was called, as it is reached from the Nightshift: `run`, `explorer.getExecution`. */
    readonly method: string,
    message = `this Nightshift is closed: ns.close() was called before ns.${method}()`,
  ) {
    super(message);
  }
}

/** Bad data in an input file; names the file and line. */
export class ItemParseError extends NightshiftError {
  /** `'ItemParseError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'ItemParseError';
  constructor(
    message: string,
    /** The input file, when known. */
    readonly file: string | undefined,
    /** The 1-based line on which the bad record starts, when known. */
    readonly line: number | undefined,
    /** The record's text as read. */
    readonly raw?: string,
  ) {
    super(message);
  }
}

/** This process no longer owns the execution: another node took it over. Nothing was committed. */
export class FencedError extends NightshiftError {
  /** `'FencedError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'FencedError';
}

/** Skip limit exceeded: the step fails. */
export class SkipLimitExceededError extends NightshiftError {
  /** `'SkipLimitExceededError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'SkipLimitExceededError';
}

/** A step has been started as often as its startLimit allows: the job fails, whatever its transitions say. */
export class StartLimitExceededError extends NightshiftError {
  /** `'StartLimitExceededError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'StartLimitExceededError';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isUserError(err: unknown): err is UsageError | ItemParseError {
  return err instanceof UsageError || err instanceof ItemParseError;
}
