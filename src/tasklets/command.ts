import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { NightshiftError, UsageError, errorMessage } from '../core/errors.ts';
import type { StepContext, TaskletStepDefinition } from '../core/job.ts';
import type { Logger } from '../core/logger.ts';
import { exitStatus, type ExitStatus } from '../core/status.ts';

/** What {@link commandTasklet} runs. */
export interface CommandSpec {
  /** The program: a name looked up on PATH, or a path. It is run directly, never through a shell. */
  readonly command: string;
  /** Its arguments, passed as they are: nothing in them is interpreted by a shell. */
  readonly args?: readonly string[] | undefined;
  /** Working directory (default: this process's). */
  readonly cwd?: string | undefined;
  /**
   * Variables set for the command on top of this process's environment; `undefined` removes one.
   * The command inherits this process's environment except Nightshift's secrets
   * ({@link COMMAND_WITHHELD_ENV}: `NIGHTSHIFT_DB`, whose URL may hold the database password, and
   * `NIGHTSHIFT_API_TOKENS`): a command that needs one gets it only when it is given here, e.g.
   * `env: { NIGHTSHIFT_DB: process.env.NIGHTSHIFT_DB }`.
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The command and every process it started are killed once it has run this long; the step fails. */
  readonly timeoutMs: number;
  /** After SIGTERM, how long the process tree has to end before SIGKILL (default 5000 ms). */
  readonly killGraceMs?: number | undefined;
  /**
   * The step's exit code for each process exit code. Unlisted codes: 0 is COMPLETED, any other
   * FAILED. A code mapped to FAILED fails the step; any other code ends it COMPLETED with that
   * exit code, for the flow's transitions (e.g. `{ 1: 'NOOP' }`).
   */
  readonly exitCodes?: Readonly<Record<number, string>> | ((processExitCode: number) => string) | undefined;
  /** How many bytes of the command's output (stdout and stderr together) go to the log (default 64 KiB). */
  readonly maxLogBytes?: number | undefined;
}

/** A command that could not run, failed, or was killed. */
export class CommandError extends NightshiftError {
  /** `'CommandError'`: stable, so it can be tested where `instanceof` cannot (another copy of the package). */
  override readonly name: string = 'CommandError';
}

/**
 * The variables of this process's environment that a command run by {@link commandTasklet} does
 * not inherit: Nightshift's secrets (the job repository's URL, which may hold its password, and
 * the HTTP API's tokens). A command gets one only through {@link CommandSpec.env}.
 */
export const COMMAND_WITHHELD_ENV: readonly string[] = ['NIGHTSHIFT_DB', 'NIGHTSHIFT_API_TOKENS'];

const DEFAULT_GRACE_MS = 5000;
const DEFAULT_MAX_LOG_BYTES = 64 * 1024;
/** How long stdout and stderr may stay open after the process exited (a grandchild may hold them). */
const DRAIN_MS = 1000;

/**
 * A tasklet step's body that runs a system command, like Spring Batch's SystemCommandTasklet.
 * The command runs without a shell (arguments are passed as they are), in its own process
 * group, with a timeout that kills the whole process tree. Its output goes to the step's log,
 * line by line, up to `maxLogBytes`. Its environment is this process's without Nightshift's
 * secrets ({@link COMMAND_WITHHELD_ENV}), plus `env`: pass a secret there when the command needs it.
 * The process's exit code becomes the step's exit status
 * through `exitCodes`. A stop request kills the command and ends the step STOPPED (restartable).
 * The result runs outside any transaction (`transactional: false`): a long command holds no lock.
 *
 * @example
 * s.tasklet({
 *   name: 'archive',
 *   ...commandTasklet(({ params }) => ({ command: 'tar', args: ['-czf', `${params.day}.tgz`, 'out/'], timeoutMs: 600_000 })),
 * })
 */
export function commandTasklet<P = Record<string, unknown>>(
  spec: CommandSpec | ((ctx: StepContext<P>) => CommandSpec),
): Pick<TaskletStepDefinition<P>, 'tasklet' | 'transactional'> {
  if (typeof spec !== 'function') checkSpec(spec);
  return {
    transactional: false,
    tasklet: (ctx) => {
      const resolved = typeof spec === 'function' ? spec(ctx) : spec;
      if (typeof spec === 'function') checkSpec(resolved);
      return runCommand(resolved, ctx);
    },
  };
}

function checkSpec(spec: CommandSpec): void {
  if (typeof spec?.command !== 'string' || spec.command.trim() === '') throw new UsageError('commandTasklet: command must be a non-empty string');
  if (spec.args !== undefined && (!Array.isArray(spec.args) || spec.args.some((a) => typeof a !== 'string'))) {
    throw new UsageError(`commandTasklet ${JSON.stringify(spec.command)}: args must be an array of strings`);
  }
  const positive = (name: string, value: unknown) => {
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new UsageError(`commandTasklet ${JSON.stringify(spec.command)}: ${name} must be a positive integer of milliseconds, got ${String(value)}`);
    }
  };
  positive('timeoutMs', spec.timeoutMs);
  if (spec.killGraceMs !== undefined) positive('killGraceMs', spec.killGraceMs);
  if (spec.maxLogBytes !== undefined && (!Number.isInteger(spec.maxLogBytes) || spec.maxLogBytes < 0)) {
    throw new UsageError(`commandTasklet ${JSON.stringify(spec.command)}: maxLogBytes must be a non-negative integer`);
  }
}

async function runCommand(spec: CommandSpec, ctx: StepContext<unknown>): Promise<ExitStatus> {
  const name = JSON.stringify(spec.command);
  ctx.stopSignal.throwIfAborted();
  if (spec.cwd !== undefined && !isDirectory(spec.cwd)) throw new CommandError(`command ${name}: working directory ${JSON.stringify(spec.cwd)} does not exist`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of COMMAND_WITHHELD_ENV) delete env[key];
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const windows = process.platform === 'win32';
  const child = spawn(spec.command, [...(spec.args ?? [])], {
    cwd: spec.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], shell: false, windowsHide: true,
    // Its own process group, so that the whole tree can be killed at once.
    detached: !windows,
  });
  const output = logOutput(child, ctx.log, spec.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES);
  ctx.log.info({ pid: child.pid }, `command ${name} started`);
  let ending: 'timeout' | 'stop' | undefined;
  const kill = (why: 'timeout' | 'stop') => {
    ending ??= why;
    killTree(child, spec.killGraceMs ?? DEFAULT_GRACE_MS);
  };
  const timer = setTimeout(() => kill('timeout'), spec.timeoutMs);
  const onStop = () => kill('stop');
  ctx.stopSignal.addEventListener('abort', onStop, { once: true });
  try {
    // How it ended is taken as the process exits: a timeout or stop after that changes nothing.
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: typeof ending }>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => reject(spawnError(name, spec, err)));
      child.once('exit', (code, signal) => resolve({ code, signal, killed: ending }));
    });
    clearTimeout(timer);
    ctx.stopSignal.removeEventListener('abort', onStop);
    await output.drained();
    if (exit.killed === 'stop') throw ctx.stopSignal.reason;
    if (exit.killed === 'timeout') {
      throw new CommandError(`command ${name} did not finish within ${spec.timeoutMs} ms; it was killed with every process it started`);
    }
    if (exit.code === null) throw new CommandError(`command ${name} was killed by ${exit.signal}${output.lastError()}`);
    const code = mapExitCode(spec, exit.code);
    ctx.log.info({ exitCode: exit.code, stepExitCode: code }, `command ${name} exited with code ${exit.code}`);
    if (code === 'FAILED') throw new CommandError(`command ${name} exited with code ${exit.code}${output.lastError()}`);
    return exitStatus(code, code === 'COMPLETED' && exit.code === 0 ? '' : `command ${name} exited with code ${exit.code}`);
  } finally {
    clearTimeout(timer);
    ctx.stopSignal.removeEventListener('abort', onStop);
    output.close();
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function spawnError(name: string, spec: CommandSpec, err: NodeJS.ErrnoException): CommandError {
  if (err.code === 'ENOENT') return new CommandError(`command ${name} not found${spec.command.includes('/') ? '' : ' on PATH'}`);
  if (err.code === 'EACCES') return new CommandError(`command ${name} is not executable (permission denied)`);
  return new CommandError(`command ${name} could not start: ${errorMessage(err)}`);
}

function mapExitCode(spec: CommandSpec, code: number): string {
  const mapped = typeof spec.exitCodes === 'function' ? spec.exitCodes(code) : spec.exitCodes?.[code];
  return mapped ?? (code === 0 ? 'COMPLETED' : 'FAILED');
}

/** SIGTERM to the command's process group (its whole tree), then SIGKILL after the grace period. */
function killTree(child: ChildProcess, graceMs: number): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (process.platform === 'win32') {
    spawn('taskkill', ['/pid', String(pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true }).on('error', () => undefined);
    return;
  }
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  signalGroup('SIGTERM');
  // Also after the leader exited: processes it started may ignore SIGTERM.
  setTimeout(() => signalGroup('SIGKILL'), graceMs).unref();
}

/**
 * Logs the command's stdout (info) and stderr (warn) line by line, up to `maxBytes` in all; what
 * is beyond is counted and reported once. Remembers stderr's last line for error descriptions.
 */
function logOutput(child: ChildProcess, log: Logger, maxBytes: number) {
  let logged = 0;
  let dropped = 0;
  let lastErrorLine = '';
  const streams = [
    { stream: child.stdout!, name: 'stdout' as const, partial: '' },
    { stream: child.stderr!, name: 'stderr' as const, partial: '' },
  ];
  const emit = (name: 'stdout' | 'stderr', line: string) => {
    if (name === 'stderr' && line.trim()) lastErrorLine = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    const size = Buffer.byteLength(line) + 1;
    if (logged + size > maxBytes) {
      dropped += size;
      return;
    }
    logged += size;
    if (name === 'stdout') log.info({ stream: name }, line);
    else log.warn({ stream: name }, line);
  };
  const closed = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        s.stream.setEncoding('utf8');
        s.stream.on('data', (chunk: string) => {
          const lines = (s.partial + chunk).split(/\r?\n/);
          s.partial = lines.pop()!;
          // An endless line is cut into pieces rather than kept whole in memory.
          if (s.partial.length > maxBytes) {
            lines.push(s.partial);
            s.partial = '';
          }
          for (const line of lines) emit(s.name, line);
        });
        s.stream.once('close', () => {
          if (s.partial) emit(s.name, s.partial);
          s.partial = '';
          resolve();
        });
        s.stream.once('error', () => resolve());
      }),
  );
  const all = Promise.all(closed);
  return {
    /** Waits for the output to end, for a bounded time: a process the command left behind may hold it open. */
    async drained(): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, DRAIN_MS)))]);
      clearTimeout(timer);
    },
    lastError: () => (lastErrorLine ? `: ${lastErrorLine}` : ''),
    close(): void {
      for (const s of streams) s.stream.destroy();
      if (dropped > 0) log.warn(`command output beyond ${maxBytes} bytes was not logged (${dropped} bytes)`);
    },
  };
}
