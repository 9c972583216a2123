/**
 * The nightshift command tree (buildProgram) and the runner of one command line (main). Importing
 * this module runs nothing: src/cli/main.ts is the entry point, and a test can build the real
 * program to read its commands and options (test/cli/help-docs.test.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { RepositoryMissingError, UsageError, errorMessage } from '../core/errors.ts';
import { processExitCode, resolveJobParams } from '../core/job.ts';
import { parseKeyValues, positiveInt } from '../core/params.ts';
import { BATCH_STATUSES, type BatchStatus } from '../core/status.ts';
import type { ExecutionDetails, Nightshift, NightshiftOptions } from '../operator.ts';
import { DEFAULT_DB_URL, openExistingDatabase } from '../repository/open.ts';
import { parseDuration, spellDuration } from '../core/duration.ts';
import { isoDateOption } from '../core/dates.ts';
import { DEFAULT_CONFIG_NAMES, loadConfig } from './config.ts';
import { envLogLevel } from '../core/log-level.ts';
import { PARENT_ENDED, whenParentEnds } from './parent.ts';
import { DEFAULT_LEASE, idleLimit, validateLease } from '../cluster/node-identity.ts';
import { executionJson, jobJson, nodeJson } from '../json.ts';
import { HELP } from './help-words.ts';
import { ago, executionsText, executionText, partitionsByExecution, table, terminalText } from './output.ts';
import { readSubmitFile } from './submit-file.ts';
import type { ServeCommandOptions } from './serve.ts';
import type { NodeProbes } from './node-probes.ts';
import type { ClusterNode, NodeHealth } from '../cluster/node.ts';
import type { Logger } from '../core/logger.ts';
import { SAME_SIGNAL_MS, nodeSignals } from './node-signals.ts';
import { addScheduleCommands, declaredTable } from './schedule-commands.ts';
import { audited, isRefusal, recordedOn, type AuditNote, type CliAction } from './audit.ts';
import { dbFlagWarning } from './db-flag.ts';

interface Common {
  db?: string;
  config?: string;
  verbose?: boolean;
  json?: boolean;
}

/** The most executions `executions --limit` lists (as the API's), and the most fire times `cron --count` prints. */
const MAX_EXECUTIONS_LIMIT = 1000;
const MAX_CRON_COUNT = 10_000;

/** Exit codes of the contract: 0 completed, 1 ended otherwise, 2 bad usage or input. */
export const EXIT = { OK: 0, NOT_COMPLETED: 1, USAGE: 2 } as const;

let verbose = process.argv.includes('--verbose');

const common = (cmd: Command, json = true) => {
  cmd
    .option('--db <url>', `job repository: sqlite:PATH or postgres://... (env NIGHTSHIFT_DB, default ${DEFAULT_DB_URL})`)
    .option('--config <file>', `job definitions (env NIGHTSHIFT_CONFIG, default ${DEFAULT_CONFIG_NAMES} here)`)
    .option('--verbose', 'log what happens, and print stack traces of errors');
  if (json) cmd.option('--json', 'print machine-readable JSON on stdout');
  return cmd;
};

const dbUrl = (o: Common) => o.db ?? process.env.NIGHTSHIFT_DB ?? DEFAULT_DB_URL;
const logLevel = (o: Common) => envLogLevel() ?? (o.verbose ? 'info' : 'silent');

/** Writes to stdout, control characters escaped (see terminalText). */
/** A comma-separated list of batch statuses, any case. */
function parseStatuses(what: string, text: string): BatchStatus[] {
  const statuses = text.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean).map((s) => {
    if (!BATCH_STATUSES.includes(s as BatchStatus)) throw new UsageError(`${what}: unknown status ${JSON.stringify(s)} (one of ${BATCH_STATUSES.join(', ')})`);
    return s as BatchStatus;
  });
  // An empty list would mean no filter: every status listed, or pruned.
  if (!statuses.length) throw new UsageError(`${what}: give at least one status (one of ${BATCH_STATUSES.join(', ')})`);
  return statuses;
}

function nonNegativeInt(what: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${what}: expected a whole number of 0 or more, got ${JSON.stringify(text)}`);
  return Number(text);
}

function out(text: string): void {
  const safe = terminalText(text, true);
  process.stdout.write(safe.endsWith('\n') ? safe : safe + '\n');
}

// Modules only some commands need load when one of them runs (start-up time: `--version`, and
// `run` on SQLite, load neither the cluster, the server, the progress bars nor the other driver).

/** What a command needs of the config and the repository (see withOperator). */
interface Needs {
  /** It only reads or changes the repository: it loads a config only when one is named. */
  repositoryOnly?: boolean;
  /** It reads or acts on executions already there: an SQLite repository must exist, not be created. */
  existing?: boolean;
}

/** The needs of a command that reads or acts on what the repository holds. */
const EXISTING: Needs = { repositoryOnly: true, existing: true };

/**
 * Opens the operator over the config's jobs; closes it after `fn`. A command that only reads or
 * changes the repository (`repositoryOnly`) needs no config: it loads one only when one is named
 * (--config or NIGHTSHIFT_CONFIG). One that acts on existing executions (`existing`) refuses an
 * SQLite file that does not exist rather than create an empty repository at a mistyped path.
 */
async function withOperator<T>(o: Common, fn: (ns: Nightshift) => Promise<T>, extra: Partial<NightshiftOptions> = {}, needs: Needs = {}): Promise<T> {
  // An existing repository is opened here, checked on the connection the operator then uses
  // (no second one), with the idle limit the operator would set; any other, by the operator.
  const { createLogger } = await import('../core/logger.ts');
  const logger = createLogger({ level: logLevel(o) });
  const existing = needs.existing ? await openExistingDatabase(dbUrl(o), { idleInTransactionMs: idleLimit({ ...DEFAULT_LEASE, ...extra.lease }), logger }) : undefined;
  try {
    const jobs = needs.repositoryOnly && !configNamed(o) ? [] : (await loadConfig(o.config)).jobs;
    const { createNightshift } = await import('../operator.ts');
    const ns = await createNightshift({ db: existing ?? dbUrl(o), jobs, logger, ...extra });
    try {
      return await fn(ns);
    } finally {
      await ns.close();
    }
  } finally {
    await existing?.close();
  }
}

const configNamed = (o: Common) => o.config !== undefined || !!process.env.NIGHTSHIFT_CONFIG;

/**
 * Runs an execution in this process with a progress display and graceful stop on signals; its
 * audit entry is recorded once it has launched, with the execution's id.
 */
async function runHere(o: Common, note: AuditNote, launch: (ns: Nightshift) => Promise<ExecutionDetails>, needs: Needs = {}): Promise<number> {
  const { createProgress } = await import('./progress.ts');
  const progress = createProgress(process.stderr, !o.json || !!process.stderr.isTTY);
  let jobs: Nightshift['jobs'] = new Map();
  let operator: Nightshift | undefined;
  let recorded: Promise<void> = Promise.resolve();
  const execution = await withOperator(
    o,
    async (ns) => {
      operator = ns;
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) process.exit(130);
        process.stderr.write(`\n${sig}: stopping at the next chunk boundary (again to exit now)\n`);
        ns.stopAll();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const unwatch = whenParentEnds(() => {
        process.stderr.write(`\nnightshift: ${PARENT_ENDED}`);
        onSignal('SIGTERM');
      });
      jobs = ns.jobs;
      try {
        return await recordedOn(note, ns.db, () => launch(ns));
      } finally {
        unwatch();
        progress.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await recorded; // before the connection closes
      }
    },
    {
      onProgress: (e, s) => progress.update(e, s),
      onLaunch: (e) => {
        note.detail.execution = e.id;
        if (operator) recorded = note.record(operator.db);
      },
    },
    needs,
  );
  if (o.json) out(JSON.stringify(executionJson(execution), null, 2));
  else out(executionText(execution));
  // Also with --json: stdout carries the execution, stderr the one line saying why it did not complete.
  if (execution.status !== 'COMPLETED') {
    process.stderr.write(`execution ${execution.id} ended ${execution.status}${execution.exitStatus.description ? `: ${terminalText(execution.exitStatus.description)}` : ''}\n`);
  }
  // The job's exitCodes first; then the execution's status (a FAILED execution exits 1, whatever failed it).
  return processExitCode(jobs.get(execution.jobName), execution);
}

export function buildProgram(): Command {
  const program = new Command('nightshift')
    .description('Batch jobs for TypeScript: run them here on SQLite, or on a PostgreSQL cluster.')
    .version(packageVersion(), '--version', 'print the version')
    .exitOverride()
    .showHelpAfterError(false)
    // Errors become one line of ours (see main), with no usage text around them.
    .configureOutput({ outputError: () => undefined, writeErr: () => undefined })
    // Options before the command are the program's, after it the command's own.
    .enablePositionalOptions()
    .helpCommand(true);
  // The common options may also come before the command (see act).
  common(program)
    .allowExcessArguments()
    .action(act(async (o: Common, cmd: Command) => {
      const [word] = cmd.args;
      throw new UsageError(word === undefined ? 'no command given (nightshift --help lists them)' : `unknown command ${JSON.stringify(word)} (nightshift --help lists them)`);
    }));

  common(program.command('jobs').description('list the jobs in the config and its declared schedules, checked as a node checks them when it starts')).action(act(async (o: Common) => {
    const config = await loadConfig(o.config);
    if (o.json) out(JSON.stringify(config.jobs.map(jobJson), null, 2));
    else {
      out(table(['job', 'parameters'], config.jobs.map((j) => [
        j.name,
        Object.entries(j.params).map(([k, s]) => `${k}:${s.kind}${s.default !== undefined ? `=${s.default instanceof Date ? s.default.toISOString() : s.default}` : s.required ? ' (required)' : ''}${s.identifying ? '' : ' (non-identifying)'}`)
          .concat(j.fireTimeIdentifying ? [] : ['fireTime (non-identifying)']).join(', ') || '-',
      ])));
      if (config.triggers.length) out(`\n${declaredTable(config.triggers)}`);
    }
    return EXIT.OK;
  }));

  common(program.command('run').description('run a new execution of a job in this process, with a progress display, until it ends'))
    .argument('<job>', HELP.job)
    .argument('[params...]', HELP.params)
    .option('--next', "run the next instance (the job's incrementer, by default run.id + 1)")
    .action(actAudited(([job]) => ({ action: 'job.run', target: `job ${job}` }), async (note: AuditNote, job: string, words: string[], o: Common & { next?: boolean }) => {
      const config = await loadConfig(o.config);
      const { requireJob } = await import('../engine/launch.ts');
      const def = requireJob(new Map(config.jobs.map((j) => [j.name, j])), job);
      const raw = parseKeyValues(words);
      Object.assign(note.detail, { params: raw }, o.next ? { next: true } : {});
      if (!o.next) resolveJobParams(def, raw); // bad parameters fail before touching the database
      return runHere(o, note, (ns) => (o.next ? ns.runNextInstance(job, raw) : ns.run(job, raw)));
    }));

  common(program.command('restart').description("restart a FAILED or STOPPED execution's instance in this process, with a progress display, until it ends"))
    .argument('<executionId>', HELP.executionId)
    .action(actAudited(onExecution('restart'), async (note: AuditNote, id: string, o: Common) => runHere(o, note, (ns) => ns.restart(positiveInt('execution id', id)), { existing: true })));

  common(program.command('stop').description('stop an execution at its next chunk boundary'))
    .argument('<executionId>', HELP.executionId)
    .action(actAudited(onExecution('stop'), async (note: AuditNote, id: string, o: Common) => {
      const n = positiveInt('execution id', id);
      const e = await withOperator(o, (ns) => recordedOn(note, ns.db, async () => (await ns.stop(n), (await ns.getExecution(n))!)), {}, EXISTING);
      out(o.json ? JSON.stringify(executionJson(e), null, 2) : `execution ${e.id} ${e.status === 'STOPPING' ? 'is stopping at its next chunk boundary' : `is ${e.status}`}`);
      return EXIT.OK;
    }));

  common(program.command('abandon').description('abandon an execution that did not complete (stopped, stopping, failed, unknown), so that its instance never runs again'))
    .argument('<executionId>', HELP.executionId)
    .action(actAudited(onExecution('abandon'), async (note: AuditNote, id: string, o: Common) => {
      const n = positiveInt('execution id', id);
      const e = await withOperator(o, (ns) => recordedOn(note, ns.db, async () => (await ns.abandon(n), (await ns.getExecution(n))!)), {}, EXISTING);
      out(o.json ? JSON.stringify(executionJson(e), null, 2) : `execution ${e.id} is ${e.status}`);
      return EXIT.OK;
    }));

  common(program.command('executions').description('list executions, newest first'))
    .option('--job <job>', 'only executions of this job')
    .option('--status <S,...>', `only executions with one of these statuses, e.g. FAILED,STOPPED (${BATCH_STATUSES.join(', ')})`)
    .option('--node <node>', 'only executions that this node ran (or runs)')
    .option('--from <iso>', 'only executions created at or after this time: a date, or a date-time (a time without an offset is UTC)')
    .option('--to <iso>', 'only executions created before this time (as --from)')
    .option('--limit <n>', 'at most this many executions', '20')
    .action(act(async (o: Common & { job?: string; status?: string; node?: string; from?: string; to?: string; limit: string }) => {
      const limit = positiveInt('--limit', o.limit, MAX_EXECUTIONS_LIMIT);
      const statuses = o.status === undefined ? undefined : parseStatuses('--status', o.status);
      const from = o.from === undefined ? undefined : isoDateOption('--from', o.from);
      const to = o.to === undefined ? undefined : isoDateOption('--to', o.to);
      const list = await withOperator(o, (ns) => ns.listExecutions({ job: o.job, statuses, node: o.node, from, to, limit }), {}, EXISTING);
      out(o.json ? JSON.stringify(list.map(executionJson), null, 2) : executionsText(list));
      return EXIT.OK;
    }));

  common(program.command('execution').description('show one execution with its steps'))
    .argument('<executionId>', HELP.executionId)
    .action(act(async (id: string, o: Common) => {
      const n = positiveInt('execution id', id);
      const [e, runs] = await withOperator(o, async (ns) => {
        const found = await ns.getExecution(n);
        // The text names the instance's other executions: the one a failover or restart led to, or came from.
        return [found, found && !o.json ? await ns.explorer.executionsOfInstance(found.instanceId) : []] as const;
      }, {}, EXISTING);
      if (!e) throw new UsageError(`no execution with id ${n}`);
      out(o.json ? JSON.stringify(executionJson(e), null, 2) : executionText(e, runs));
      return EXIT.OK;
    }));

  common(program.command('submit').description('ask the cluster to run a job; prints the execution id, or with --wait the execution once it ends'))
    .argument('<job>', HELP.job)
    .argument('[params...]', HELP.params)
    .option('--node <node>', 'run it on the node of this name')
    .option('--key <key>', 'affinity key: launches with the same key go to the same live node')
    .option('--wait', 'wait until the execution ends (following failovers) and print it')
    .option('--next', "submit the next instance (the job's incrementer, by default run.id + 1)")
    .action(actAudited(([job]) => ({ action: 'job.submit', target: `job ${job}` }), async (note: AuditNote, job: string, words: string[], o: Common & { node?: string; key?: string; wait?: boolean; next?: boolean }) => {
      if (o.node !== undefined && o.key !== undefined) throw new UsageError('give either --node or --key, not both');
      const routing = o.node !== undefined ? { node: o.node } : o.key !== undefined ? { affinityKey: o.key } : 'any';
      const raw = parseKeyValues(words); // malformed words fail before touching the database
      Object.assign(note.detail, { params: raw }, o.node !== undefined ? { node: o.node } : {}, o.key !== undefined ? { key: o.key } : {}, o.next ? { next: true } : {});
      return withOperator(o, async (ns) => {
        const execution = await recordedOn(note, ns.db, () => (o.next ? ns.submitNextInstance(job, raw, routing) : ns.submit(job, raw, routing)).then((e) => {
          note.detail.execution = e.id;
          return e;
        }));
        // Once, on stderr: work no live node can take waits (STARTING) until one joins, which --wait would otherwise wait out silently.
        const alive = (await ns.nodes()).filter((n) => n.status === 'alive');
        // A draining node takes no new work: it does not count.
        const taking = alive.filter((n) => !n.draining);
        if (o.node !== undefined && !taking.some((n) => n.name === o.node)) {
          process.stderr.write(terminalText(alive.some((n) => n.name === o.node)
            ? `nightshift: node ${o.node} is draining; execution ${execution.id} waits until it resumes (nightshift resume ${o.node}) (or abandon it)`
            : `nightshift: node ${o.node} is not alive; execution ${execution.id} waits until a node named ${o.node} joins (or abandon it)`) + '\n');
        } else if (o.node === undefined && !taking.some((n) => n.jobs.includes(job))) {
          process.stderr.write(terminalText(`nightshift: no live node runs job ${job} yet: execution ${execution.id} waits, STARTING, until one does (start one with nightshift node)`) + '\n');
        }
        if (!o.wait) {
          out(o.json ? JSON.stringify({ ...executionJson(execution), steps: [] }, null, 2) : String(execution.id));
          return EXIT.OK;
        }
        if (!o.json) process.stderr.write(`execution ${execution.id} submitted; waiting for it to end\n`);
        const done = await ns.waitForEnd(execution.id);
        out(o.json ? JSON.stringify(executionJson(done), null, 2) : executionText(done));
        return processExitCode(ns.jobs.get(done.jobName), done);
      });
    }));

  common(program.command('submit-many').description('ask the cluster to run many launches read from a file of JSON lines'))
    .argument('<file>', 'one {"job": NAME, "params": {...}} per line; - reads standard input')
    .action(actAudited(() => ({ action: 'job.submitMany', target: 'executions' }), async (note: AuditNote, file: string, o: Common) => {
      const items = readSubmitFile(file);
      const name = file === '-' ? 'stdin' : file;
      return withOperator(o, async (ns) => {
        const results = await recordedOn(note, ns.db, async () => {
          const all = await ns.submitMany(items);
          const refused = all.filter((r) => 'error' in r).length;
          Object.assign(note.detail, { items: all.length, submitted: all.length - refused, failed: refused });
          return all;
        });
        const failed = results.filter((r) => 'error' in r);
        if (o.json) {
          const lines = results.map((r) => ({ ...r, line: items[r.index].line }));
          out(JSON.stringify({ submitted: results.length - failed.length, failed: failed.length, results: lines }, null, 2));
        } else {
          for (const r of failed) if ('error' in r) process.stderr.write(`${terminalText(`${name}:${items[r.index].line}: ${r.error}`)}\n`);
          out(`${results.length - failed.length} submitted, ${failed.length} refused`);
        }
        return failed.length ? EXIT.NOT_COMPLETED : EXIT.OK;
      });
    }));

  common(program.command('node').description('run a cluster node until SIGTERM/SIGINT'), false)
    .option('--name <name>', 'unique node name (default node-HOST-PID)')
    .option('--concurrency <n>', 'executions run at once', '4')
    .option('--heartbeat-ms <ms>', 'heartbeat interval', String(DEFAULT_LEASE.heartbeatMs))
    .option('--lease-ms <ms>', 'declared dead after this long without a heartbeat', String(DEFAULT_LEASE.leaseMs))
    .option('--exit-with-parent', 'shut down gracefully when the process that started this one ends')
    .addOption(new Option('--spread <how>', 'even: claim at most an even share of queued work while peers have free slots; first-come: all it has room for').choices(['even', 'first-come']).default('even'))
    .option('--no-listen', 'hold no LISTEN connection: learn of queued work from the heartbeat thread (each beat) and polls')
    .option('--pool-size <n>', 'most pooled connections (PostgreSQL; default concurrency + 4)')
    .option('--pool-idle-ms <ms>', 'close a pooled connection idle this long (PostgreSQL)', '10000')
    .option('--no-scheduler', 'do not run the scheduler loop that fires triggers on this node')
    .option('--stop-timeout-ms <ms>', `on SIGTERM/SIGINT, wait this long for running steps to stop at a chunk boundary; then hand over what still runs (a live node resumes it from its last commit) and leave. A second signal, ${SAME_SIGNAL_MS / 1000} s or more after the first, hands over at once; one sooner is the same request`, '60000')
    .option('--health-port <n>', 'serve GET /livez and /readyz on this port (no token: they show only the node\'s health); 0 picks a free one')
    .option('--health-host <host>', 'the address the probes listen on (0.0.0.0 for Kubernetes probes)', '127.0.0.1')
    .action(act(async (o: Common & {
      name?: string; concurrency: string; heartbeatMs: string; leaseMs: string; exitWithParent?: boolean; spread: 'even' | 'first-come';
      listen: boolean; poolSize?: string; poolIdleMs: string; scheduler: boolean; stopTimeoutMs: string; healthPort?: string; healthHost: string;
    }) => {
      const healthPort = o.healthPort === undefined ? undefined : o.healthPort === '0' ? 0 : positiveInt('--health-port', o.healthPort, 65535);
      const concurrency = positiveInt('--concurrency', o.concurrency);
      const stopTimeoutMs = positiveInt('--stop-timeout-ms', o.stopTimeoutMs);
      const poolSize = o.poolSize === undefined ? undefined : positiveInt('--pool-size', o.poolSize);
      const poolIdleMs = positiveInt('--pool-idle-ms', o.poolIdleMs);
      if (poolIdleMs < 10) throw new UsageError(`--pool-idle-ms must be at least 10, got ${poolIdleMs}`);
      const heartbeatMs = positiveInt('--heartbeat-ms', o.heartbeatMs);
      const leaseMs = positiveInt('--lease-ms', o.leaseMs);
      try {
        validateLease({ ...DEFAULT_LEASE, heartbeatMs, leaseMs });
      } catch (err) {
        throw new UsageError(`bad node options: ${errorMessage(err)}`);
      }
      const config = await loadConfig(o.config);
      const [{ startNode }, { createLogger }] = await Promise.all([import('../cluster/node.ts'), import('../core/logger.ts')]);
      const logger = createLogger();
      // A deployment that lost its NIGHTSHIFT_DB would otherwise run alone on a file of its own.
      if (o.db === undefined && process.env.NIGHTSHIFT_DB === undefined) {
        logger.warn(`no --db or NIGHTSHIFT_DB: this node's repository is ${DEFAULT_DB_URL} in ${process.cwd()}, shared only by the processes on this machine that use that file; set NIGHTSHIFT_DB=postgres://... to join a PostgreSQL cluster`);
      }
      // The node handles SIGTERM/SIGINT for its whole life (see nodeSignals): the first starts the
      // graceful shutdown, a later one hands what still runs over now; none kills it.
      const started: { node?: ClusterNode } = {};
      const signals = nodeSignals({ stopTimeoutMs, logger, running: () => started.node?.running().length, handOverNow: () => void started.node?.shutdown({ timeoutMs: 0 }).catch(() => undefined), exitNow: () => process.exit(130) });
      process.on('SIGINT', signals.onSignal);
      process.on('SIGTERM', signals.onSignal);
      // A launched worker (see localProcessLauncher), or a node started by npx: once its parent is
      // gone it is re-parented.
      const parent = process.ppid;
      const unwatch = whenParentEnds(() => {
        if (!o.exitWithParent) logger.warn(PARENT_ENDED);
        signals.stop();
      }, o.exitWithParent === true, parent);
      // The probes answer from the start (live, not ready), also while the node waits for its
      // database (connect_retry_ms): a liveness probe must not restart it meanwhile.
      const probes = healthPort === undefined ? undefined : await startProbes(() => started.node?.health(), o.healthHost, healthPort, logger);
      try {
        const node = (started.node = await startNode({
          db: dbUrl(o), jobs: config.jobs, name: o.name, concurrency, lease: { heartbeatMs, leaseMs }, schedules: config.schedules, spread: o.spread,
          listen: o.listen, poolSize, poolIdleMs, scheduler: o.scheduler,
          retention: config.retention, nodeRetentionMs: config.nodeRetentionMs,
          logger,
        }));
        // Once it runs (a command that fails at once says one line only: its error).
        const exposed = dbFlagWarning(o.db);
        if (exposed) logger.warn(exposed);
        await signals.stopped;
        unwatch();
        // A second signal that came while the node was starting hands over at once too. The
        // handlers stay: a signal during the shutdown must not kill the process (the exit follows).
        await node.shutdown({ timeoutMs: signals.now() ? 0 : stopTimeoutMs });
      } finally {
        await probes?.close();
      }
      return EXIT.OK;
    }));

  common(program.command('nodes').description('list the cluster members and what each runs, executions and partitions (the newest incarnation of each name, and every live one)'))
    .option('--all', 'every incarnation of each node name still kept, oldest first')
    .action(act(async (o: Common & { all?: boolean }) => {
      // The heartbeats' age by the database's clock, which wrote them (not this machine's).
      const [nodes, now] = await withOperator(o, (ns) => Promise.all([ns.nodes({ all: o.all === true }), ns.explorer.dbNow()]), {}, EXISTING);
      if (o.json) {
        out(JSON.stringify(nodes.map(nodeJson), null, 2));
      } else if (!nodes.length) out('no nodes have joined');
      else {
        // A worker node runs partitions, not executions: without their column it looked idle.
        out(table(['name', 'status', 'last heartbeat', 'host', 'pid', 'concurrency', 'running', 'partitions', 'jobs'], nodes.map((n) => [
          n.name, n.draining ? 'draining' : n.status, ago(now - n.lastHeartbeat.getTime()), n.host, n.pid, n.concurrency, n.running.join(',') || '-',
          partitionsByExecution(n.runningPartitions) || '-', n.jobs.join(','),
        ])));
      }
      return EXIT.OK;
    }));

  // Drain and resume a node by name, as the HTTP API and the console do: the node sees the request
  // within a heartbeat.
  const nodeActions = [
    {
      name: 'drain', ask: 'requestDrain', about: 'ask a live node to drain: within a heartbeat it takes no more work and hands over what it runs, but stays up',
      done: 'is asked to drain: within a heartbeat it takes no more work and hands over what it runs', unchangedIfDraining: true, unchanged: 'was already asked to drain',
    },
    {
      name: 'resume', ask: 'resumeNode', about: 'ask a drained node to take work again, within a heartbeat',
      done: 'is asked to resume: within a heartbeat it takes work again', unchangedIfDraining: false, unchanged: 'was not draining: it takes work already',
    },
  ] as const;
  for (const action of nodeActions) {
    common(program.command(action.name).description(action.about))
      .argument('<node>', HELP.node)
      .action(actAudited(([node]) => ({ action: `node.${action.name}`, target: `node ${node}` }), async (note: AuditNote, node: string, o: Common) => {
        const ask = (await import('../repository/nodes.ts'))[action.ask];
        const liveNamed = async (ns: Nightshift) => (await ns.nodes()).find((n) => n.name === node && n.status === 'alive');
        const [before, live] = await withOperator(o, (ns) => recordedOn(note, ns.db, async () => {
          const was = await liveNamed(ns);
          const after = was && (await ask(ns.db, node)) ? await liveNamed(ns) : undefined;
          if (!after) throw new UsageError(`no live node named ${terminalText(node)}`);
          return [was, after] as const;
        }), {}, EXISTING);
        out(o.json ? JSON.stringify(nodeJson(live), null, 2) : `node ${terminalText(node)} ${before?.draining === action.unchangedIfDraining ? action.unchanged : action.done}`);
        return EXIT.OK;
      }));
  }

  common(program.command('prune').description('delete old history in short batches; never running work, nor restartable instances unless asked'))
    .requiredOption('--older-than <duration>', 'executions that ended longer ago than this, e.g. 30d, 12h (also node incarnations that ended then)')
    .option('--status <S,...>', 'only executions with one of these statuses, e.g. COMPLETED,ABANDONED')
    .option('--keep-last <n>', 'keep the newest N executions of each job, however old')
    .option('--include-restartable', 'also instances that could still be restarted (their newest execution FAILED, STOPPED or UNKNOWN)')
    .option('--batch-size <n>', 'executions deleted per transaction', '1000')
    .option('--dry-run', 'delete nothing: print what this prune would delete (read only, no locks)')
    .action(actAudited(([o]) => (o.dryRun ? undefined : { action: 'history.prune', target: 'history' }), async (note: AuditNote, o: Common & {
      olderThan: string; status?: string; keepLast?: string; includeRestartable?: boolean; batchSize: string; dryRun?: boolean;
    }) => {
      const options = {
        olderThanMs: parseDuration('--older-than', o.olderThan),
        statuses: o.status === undefined ? undefined : parseStatuses('--status', o.status),
        keepLast: o.keepLast === undefined ? undefined : nonNegativeInt('--keep-last', o.keepLast),
        includeRestartable: o.includeRestartable === true,
        batchSize: positiveInt('--batch-size', o.batchSize),
        dryRun: o.dryRun === true,
      };
      Object.assign(note.detail, options);
      const { pruneHistory } = await import('../repository/retention.ts');
      const db = await openExistingDatabase(dbUrl(o));
      try {
        const r = await recordedOn(note, db, async () => {
          const done = await pruneHistory(db, options);
          note.detail.deleted = { executions: done.executions, steps: done.steps, instances: done.instances, nodes: done.nodes };
          return done;
        });
        out(o.json ? JSON.stringify(r, null, 2)
          // The age in words: `--older-than 1m` is a minute, not a month.
          : r.dryRun ? `would delete ${r.executions} executions that ended over ${spellDuration(options.olderThanMs)} ago (${r.steps} step executions, ${r.instances} instances) and ${r.nodes} ended node incarnations; nothing deleted`
          : `deleted ${r.executions} executions that ended over ${spellDuration(options.olderThanMs)} ago (${r.steps} step executions, ${r.instances} instances) in ${r.batches} batches, and ${r.nodes} ended node incarnations`);
      } finally {
        await db.close();
      }
      return EXIT.OK;
    }));

  common(program.command('migrate').description('create the job repository or bring its schema up to this version, run at deploy time by the role that owns the schema'))
    .action(act(async (o: Common) => {
      const [{ migrateDatabase }, { createLogger }, { SCHEMA_VERSION }] = await Promise.all([import('../repository/open.ts'), import('../core/logger.ts'), import('../repository/schema.ts')]);
      const { from, to, compatibleFrom } = await migrateDatabase(dbUrl(o), { logger: createLogger({ level: logLevel(o) }) });
      // Which older processes may keep running: what a rolling upgrade needs to know.
      const older = compatibleFrom < to ? `; processes of schema version ${compatibleFrom} or later can run on it` : '';
      out(o.json ? JSON.stringify({ from, to, migrated: from !== to, compatibleFrom }, null, 2)
        : to > SCHEMA_VERSION ? `schema at ${to}, newer than this Nightshift (${SCHEMA_VERSION})${older}: nothing to do`
        : from === to ? `schema already at ${to}` : from === 0 ? `schema created at ${to}` : `schema migrated from ${from} to ${to}${older}`);
      return EXIT.OK;
    }));

  common(program.command('serve').description('serve the web console (/), the REST API (/api) and Prometheus metrics (/metrics) until SIGTERM/SIGINT'), false)
    .option('--port <n>', 'TCP port; 0 picks a free one', '8080')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--tokens-file <file>', 'API tokens, one NAME:ROLE:SECRET per line (besides env NIGHTSHIFT_API_TOKENS)')
    .option('--allowed-hosts <names>', 'more Host names to serve, comma-separated (.domain for its subdomains, * for any; env NIGHTSHIFT_ALLOWED_HOSTS)')
    .option('--request-timeout <ms>', 'a request not received within this time is answered 408 and closed', '10000')
    .option('--trust-proxy [addresses]', "take the client's address from X-Forwarded-For when the peer is the proxy: its addresses or subnets, comma-separated (bare: a proxy on this machine)")
    .option('--insecure-no-auth', 'serve without API tokens, on a loopback address only')
    .action(act(async (o: Common & Omit<ServeCommandOptions, 'db'>) => (await import('./serve.ts')).serveCommand({ ...o, db: dbUrl(o), dbFlag: o.db }, out)));

  program
    .command('cron')
    .description('print the next fire times of a Quartz cron expression')
    .argument('<expr>', HELP.cron)
    .option('--tz <zone>', 'IANA time zone', 'UTC')
    .option('--from <iso>', 'start instant, ISO 8601: a date, or a date-time (a time without an offset is UTC); default now')
    .option('--count <n>', 'how many', '5')
    .option('--json', 'print a JSON array of ISO-8601 UTC times')
    .option('--verbose', 'print stack traces of errors')
    .action(act(async (expression: string, o: { tz: string; from?: string; count: string; json?: boolean }) => {
      const count = positiveInt('--count', o.count, MAX_CRON_COUNT);
      const from = o.from === undefined ? new Date() : isoDateOption('--from', o.from);
      const { nextFireTimes } = await import('../scheduler/cron.ts');
      const times = nextFireTimes(expression, { from, count, timeZone: o.tz });
      if (o.json) out(JSON.stringify(times.map((t) => t.toISOString())));
      else if (times.length === 0) out('never fires again');
      else {
        const local = new Intl.DateTimeFormat('en-CA', {
          timeZone: o.tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
          second: '2-digit', hourCycle: 'h23', weekday: 'short', timeZoneName: 'short',
        });
        out(times.map((t) => `${t.toISOString()}  ${local.format(t)}`).join('\n'));
      }
      return EXIT.OK;
    }));

  addScheduleCommands(program, { common, act, actAudited, out, dbUrl });

  program
    .command('demo')
    .description('run a self-contained demonstration on the embedded database')
    .option('--dir <dir>', 'where to put its files (default: a new temporary folder)')
    .option('--rows <n>', 'rows in the generated CSV', '200000')
    .option('--verbose', 'print stack traces of errors')
    .action(act(async (o: { dir?: string; rows: string }) => {
      const { runDemo } = await import('./demo.ts');
      await runDemo({ dir: o.dir, rows: positiveInt('--rows', o.rows) });
      return EXIT.OK;
    }));

  return program;
}

let exitCode: number = EXIT.OK;

/**
 * The probes of `node --health-port`, from before the node starts (`health` is undefined until
 * it has). A port that cannot be bound is bad usage: the command exits 2 naming the address.
 */
async function startProbes(health: () => NodeHealth | undefined, host: string, port: number, log: Logger): Promise<NodeProbes> {
  const { serveNodeProbes } = await import('./node-probes.ts');
  try {
    const probes = await serveNodeProbes(health, host, port);
    log.info({ probes: probes.url }, `probes at ${probes.url}/livez and ${probes.url}/readyz`);
    return probes;
  } catch (err) {
    throw new UsageError(`cannot serve the probes on ${host}:${port} (--health-host, --health-port): ${errorMessage(err)}`);
  }
}

/**
 * Wraps a command's action: its result is the exit code, and errors are reported as one line.
 * Options given before the command (`nightshift --db URL run ...`) count as the command's own,
 * when it has them.
 */
function act<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const own = args[args.length - 2] as Record<string, unknown>;
    try {
      // Checked for every command, before it does anything: a bad level is bad usage (exit 2).
      envLogLevel();
      let root = cmd;
      while (root.parent) root = root.parent;
      for (const option of root.options) {
        const key = option.attributeName();
        if (root.getOptionValue(key) === undefined) continue;
        if (!cmd.options.some((o) => o.attributeName() === key)) throw new UsageError(`${option.long} does not apply to ${commandPath(cmd)}`);
        own[key] ??= root.getOptionValue(key);
      }
      exitCode = await fn(...args);
    } catch (err) {
      exitCode = report(err);
    }
  };
}

/**
 * Wraps the action of a command that acts, as `act` does, and records it in the audit log (see
 * src/cli/audit.ts) as `describe` names it from the command's arguments.
 */
function actAudited<A extends unknown[]>(describe: (args: NoInfer<A>) => CliAction | undefined, fn: (note: AuditNote, ...args: A) => Promise<number>): (...args: NoInfer<A>) => Promise<void> {
  return act(async (...args: A) => audited(dbUrl(args[args.length - 2] as Common), describe(args), (note) => fn(note, ...args)));
}

/** An action on the execution a command names by id, e.g. `execution.stop` on `execution 12`. */
const onExecution = (action: 'restart' | 'stop' | 'abandon') => ([id]: readonly [string, ...unknown[]]): CliAction => ({ action: `execution.${action}`, target: `execution ${id}` });

/** Runs the CLI and returns its exit code; errors become one clear line on stderr. */
export async function main(argv: string[]): Promise<number> {
  verbose = argv.includes('--verbose');
  const program = buildProgram();
  // A word a command does not take is refused (`restart 7 failAt=0` would otherwise restart 7 as
  // it was, silently); commands that take parameters say so with a variadic argument.
  const settle = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride((err) => {
        // Commander names the command alone ("for 'list'"); the user typed "schedule list".
        throw new CommanderError(err.exitCode, err.code, err.message.replace(`for '${sub.name()}'`, `for '${commandPath(sub)}'`));
      });
      sub.configureOutput({ outputError: () => undefined, writeErr: () => undefined }).allowExcessArguments(false);
      settle(sub);
    }
  };
  settle(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.OK;
      // A group such as `schedule` given without its command.
      const message = err.code === 'commander.help' ? 'no command given (--help lists the commands)' : err.message.replace(/^error: /, '');
      process.stderr.write(`nightshift: ${terminalText(message)}\n`);
      return EXIT.USAGE;
    }
    return report(err);
  }
  return exitCode;
}

/** A command as typed, e.g. "schedule add". */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function report(err: unknown): number {
  if (isRefusal(err)) {
    process.stderr.write(`nightshift: ${terminalText(userMessage(err))}\n`);
    if (verbose) printStack(err);
    return EXIT.USAGE;
  }
  process.stderr.write(`nightshift: ${terminalText(errorMessage(err))}\n`);
  if (verbose) printStack(err);
  else process.stderr.write('(run with --verbose for details)\n');
  return EXIT.NOT_COMPLETED;
}

/** The stack of an error and of its causes (--verbose): where a wrapped error (a config that threw) came from. */
function printStack(err: unknown): void {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    process.stderr.write(`${depth ? 'caused by: ' : ''}${terminalText(e.stack ?? '', true)}\n`);
  }
}

/** A user error's message, with what the CLI's user can do about it where the message's layer cannot know. */
function userMessage(err: unknown): string {
  if (err instanceof RepositoryMissingError) return `${err.message}; check --db (or NIGHTSHIFT_DB), or run a job first to create it`;
  return errorMessage(err);
}
