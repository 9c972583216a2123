import { Option, type Command } from 'commander';
import { UsageError } from '../core/errors.ts';
import { formatDuration, parseDuration } from '../core/duration.ts';
import { INSTANT_FORMS, instantOption, isoDateOption } from '../core/dates.ts';
import { parseKeyValues } from '../core/params.ts';
import { HELP } from './help-words.ts';
import { executionJson } from '../json.ts';
import { table } from './output.ts';
import { osUser, recordedOn, type AuditNote, type CliAction } from './audit.ts';
import { loadConfig } from './config.ts';
import { openDatabase, openExistingDatabase } from '../repository/open.ts';
import {
  MIN_EVERY_MS, MISFIRE_POLICIES, fireJson, scheduleAdmin, scheduleJson, validateSchedule, type MisfirePolicy,
  type JobsLike, type ScheduleAdmin, type ScheduleSpec, type TriggerDefinition,
} from '../scheduler/triggers.ts';

interface Common {
  db?: string;
  config?: string;
  verbose?: boolean;
  json?: boolean;
}

/** What src/cli/program.ts lends the `schedule` commands. */
export interface CliKit {
  common: (cmd: Command, json?: boolean) => Command;
  act: <A extends unknown[]>(fn: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;
  /** `act` for a command that acts: recorded in the audit log as `describe` names it. */
  actAudited: <A extends unknown[]>(
    describe: (args: NoInfer<A>) => CliAction | undefined,
    fn: (note: AuditNote, ...args: A) => Promise<number>,
  ) => (...args: NoInfer<A>) => Promise<void>;
  out: (text: string) => void;
  dbUrl: (o: Common) => string;
}

/** Milliseconds (`1500`) or a duration (`30s`, `5m`, `1h`), at least `min` ms. */
function wholeMs(flag: string, raw: string, min: number): number {
  let n = NaN;
  try {
    n = /^\d+$/.test(raw) ? Number(raw) : parseDuration(flag, raw);
  } catch {
    // Said below, with what this flag takes.
  }
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} must be a whole number of milliseconds or a duration such as 30s, 5m or 1h, of at least ${min} ms, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * Opens the repository for `fn`; with `existing`, an SQLite repository must already exist (see
 * withOperator). A command that acts records its audit entry there (`note`).
 */
async function withAdmin<T>(o: Common, kit: CliKit, fn: (admin: ScheduleAdmin) => Promise<T>, { jobs = [], existing = true, note }: { jobs?: JobsLike; existing?: boolean; note?: AuditNote } = {}): Promise<T> {
  const db = await (existing ? openExistingDatabase : openDatabase)(kit.dbUrl(o));
  try {
    return await recordedOn(note, db, () => fn(scheduleAdmin({ db, jobs })));
  } finally {
    await db.close();
  }
}

/**
 * How a trigger fires: once at its time, or its cron expression or its interval as --every takes
 * it (`every 5m`), with its bounds (`from ... until ...`).
 */
export function timingText(s: TriggerDefinition): string {
  if (s.at) return `once at ${s.at.toISOString()}`;
  const repeat = s.cron !== null ? `cron ${s.cron}${s.tz && s.tz !== 'UTC' ? ` (${s.tz})` : ''}` : `every ${formatDuration(s.everyMs!)}`;
  return `${repeat}${s.startAt ? ` from ${s.startAt.toISOString()}` : ''}${s.endAt ? ` until ${s.endAt.toISOString()}` : ''}`;
}

/** The timing flags of `schedule add` as a schedule's timing fields: one of --cron, --every and --at, and the bounds. */
function timingFlags(o: { cron?: string; tz?: string; every?: string; at?: string; startAt?: string; endAt?: string }): Pick<ScheduleSpec, 'cron' | 'tz' | 'everyMs' | 'at' | 'startAt' | 'endAt'> {
  const kinds = [o.cron !== undefined && '--cron', o.every !== undefined && '--every', o.at !== undefined && '--at'].filter((k) => k !== false);
  if (kinds.length !== 1) {
    throw new UsageError(`schedule add: give one of --cron EXPR, --every INTERVAL and --at TIME, not ${kinds.length ? kinds.join(' and ') : 'none'}`);
  }
  if (o.tz !== undefined && o.cron === undefined) throw new UsageError('schedule add: --tz applies to --cron only');
  if (o.at !== undefined) {
    const extra = [o.startAt !== undefined && '--start-at', o.endAt !== undefined && '--end-at'].filter((k) => k !== false);
    if (extra.length) throw new UsageError(`schedule add: ${extra.join(' and ')} bound --cron and --every, not --at (a one-shot fires once)`);
  }
  const time = (flag: string, raw: string | undefined) => (raw === undefined ? undefined : instantOption(flag, raw));
  return {
    cron: o.cron, tz: o.tz, everyMs: o.every === undefined ? undefined : wholeMs('--every', o.every, MIN_EVERY_MS),
    at: time('--at', o.at), startAt: time('--start-at', o.startAt), endAt: time('--end-at', o.endAt),
  };
}

/** A trigger's parameters as `k=v` words, or `-`. */
const paramsText = (s: TriggerDefinition) => Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(' ') || '-';

/** The triggers a config declares, as `jobs` lists them under its jobs. */
export function declaredTable(triggers: readonly TriggerDefinition[]): string {
  return table(['schedule', 'job', 'fires', 'params'], triggers.map((s) => [s.name, s.job, timingText(s), paramsText(s)]));
}

/** `nightshift schedule add|list|pause|resume|remove|trigger|history`. */
export function addScheduleCommands(program: Command, kit: CliKit): void {
  const { common, act, actAudited, out } = kit;
  /** An action on the trigger a command names, as the API's: `schedule.pause` on `schedule nightly`. */
  const onSchedule = (action: string) => ([name]: readonly [string, ...unknown[]]): CliAction => ({ action: `schedule.${action}`, target: `schedule ${name}` });
  const group = program.command('schedule').description('add, list and control triggers that run jobs on a cron expression, a fixed interval or once');

  common(group.command('add').description('add or replace a trigger'))
    .argument('<name>', HELP.trigger)
    .argument('[params...]', HELP.params)
    .requiredOption('--job <job>', 'the job it runs (job name)')
    .option('--cron <expr>', HELP.cron)
    .option('--tz <zone>', 'IANA time zone of --cron (default UTC)')
    .option('--every <interval>', `fixed interval in milliseconds or as a duration (30s, 5m, 1h; >= ${MIN_EVERY_MS} ms); fires at multiples of it since the Unix epoch`)
    .option('--at <time>', `fire once, at this time (${INSTANT_FORMS}); a time already past fires at once as a misfire (--misfire)`)
    .option('--start-at <time>', 'no fire time of --cron or --every before this time (same form as --at)')
    .option('--end-at <time>', 'no fire time of --cron or --every after this time (same form as --at); then it has no next fire time')
    .addOption(new Option('--misfire <policy>', 'fire times found later than the threshold: fire once now, or skip them').choices(MISFIRE_POLICIES as string[]).default('fire-once'))
    .option('--misfire-threshold <interval>', 'a fire time later than this (milliseconds, or a duration such as 30s) is a misfire', '5000')
    .option('--no-concurrent', 'while the previous firing still runs, wait (a wait past the threshold is a misfire)')
    .action(actAudited(onSchedule('put'), async (note: AuditNote, name: string, words: string[], o: Common & {
      job: string; cron?: string; tz?: string; every?: string; at?: string; startAt?: string; endAt?: string;
      misfire: MisfirePolicy; misfireThreshold: string; concurrent: boolean;
    }) => {
      const spec: ScheduleSpec = {
        name,
        job: o.job,
        ...timingFlags(o),
        params: parseKeyValues(words),
        misfire: o.misfire,
        misfireThresholdMs: wholeMs('--misfire-threshold', o.misfireThreshold, 0),
        noConcurrent: o.concurrent === false,
      };
      const config = await loadConfig(o.config);
      validateSchedule(spec, config.jobs); // bad input fails before touching the database
      const { name: _, ...given } = spec;
      const { schedule, result } = await withAdmin(o, kit, async (admin) => {
        const added = await admin.add(spec);
        Object.assign(note.detail, { result: added.result, ...given });
        return added;
      }, { jobs: config.jobs, existing: false, note });
      if (o.json) out(JSON.stringify(scheduleJson(schedule), null, 2));
      else {
        out(`schedule ${schedule.name} ${result === 'created' ? 'added' : result}: job ${schedule.job}, ${timingText(schedule)}` +
          (schedule.paused ? ' (paused)' : `; next fire time ${schedule.nextFireTime?.toISOString() ?? 'never'}`));
      }
      return 0;
    }));

  common(group.command('list').description('list the triggers, with their next fire times'))
    .action(act(async (o: Common) => {
      const list = await withAdmin(o, kit, (admin) => admin.list());
      if (o.json) out(JSON.stringify(list.map(scheduleJson), null, 2));
      else if (!list.length) out('no schedules');
      else {
        out(table(['name', 'job', 'schedule', 'params', 'misfire', 'state', 'next fire time', 'last fire time', 'last execution'], list.map((s) => [
          s.name, s.job, timingText(s), paramsText(s),
          `${s.misfire} >${s.misfireThresholdMs}ms${s.noConcurrent ? ' no-concurrent' : ''}`,
          s.paused ? 'paused' : 'active',
          s.paused ? '-' : s.nextFireTime?.toISOString() ?? 'never', s.lastFireTime?.toISOString() ?? '-', s.lastExecutionId ?? '-',
        ])));
      }
      return 0;
    }));

  for (const [verb, description] of [
    ['pause', 'stop firing a trigger until it is resumed'],
    ['resume', 'fire a paused trigger again, from its next fire time after now'],
    ['remove', 'delete a trigger'],
  ] as const) {
    common(group.command(verb).description(description))
      .argument('<name>', HELP.trigger)
      .action(actAudited(onSchedule(verb), async (note: AuditNote, name: string, o: Common) => {
        let declared = false;
        const s = await withAdmin(o, kit, async (admin) => {
          if (verb === 'remove') {
            declared = (await admin.get(name))?.source === 'config';
            await admin.remove(name);
            return undefined;
          }
          return verb === 'pause' ? admin.pause(name) : admin.resume(name);
        }, { note });
        if (o.json) out(JSON.stringify(s ? scheduleJson(s) : { name, removed: true }, null, 2));
        else if (verb === 'remove') out(`schedule ${name} removed`);
        else if (verb === 'pause') out(`schedule ${name} paused`);
        else out(`schedule ${name} resumed; next fire time ${s?.nextFireTime?.toISOString() ?? 'never'}`);
        if (declared) {
          process.stderr.write(`nightshift: schedule ${name} came from a config's schedules: a node that starts or resumes with that config adds it again (take it out of the config, or pause it instead)\n`);
        }
        return 0;
      }));
  }

  // Fire now, as the API's POST /api/schedules/NAME/trigger and the console's button do.
  common(group.command('trigger').description("fire a trigger now (the config must define its job): queue its job with its parameters and fireTime = now, paused or not (its next fire time does not move); prints the execution id"))
    .argument('<name>', HELP.trigger)
    .action(actAudited(onSchedule('trigger'), async (note: AuditNote, name: string, o: Common) => {
      const config = await loadConfig(o.config);
      const execution = await withAdmin(o, kit, async (admin) => {
        const fired = await admin.fireNow(name, whoIsAsking());
        note.detail.execution = fired.id;
        return fired;
      }, { jobs: config.jobs, note });
      out(o.json ? JSON.stringify({ ...executionJson(execution), steps: [] }, null, 2) : String(execution.id));
      return 0;
    }));

  common(group.command('history').description("a trigger's recent firings, newest first, with their outcomes (fired, misfired, skipped, refused, manual)"))
    .argument('<name>', HELP.trigger)
    .option('--limit <n>', 'at most this many firings (at most 1000)', '20')
    .option('--before <time>', 'only fire times before this one (ISO-8601): the oldest fire time shown pages further back')
    .action(act(async (name: string, o: Common & { limit: string; before?: string }) => {
      const limit = Number(o.limit);
      if (!/^\d+$/.test(o.limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit must be a whole number from 1 to 1000, got ${JSON.stringify(o.limit)}`);
      const before = o.before === undefined ? undefined : isoDateOption('--before', o.before);
      const fires = await withAdmin(o, kit, async (admin) => {
        if (!(await admin.get(name))) throw new UsageError(`no schedule named ${name}`);
        return admin.history(name, limit, before);
      });
      if (o.json) out(JSON.stringify(fires.map(fireJson), null, 2));
      else if (!fires.length) out(`schedule ${name} has not fired yet`);
      else {
        out(table(['fire time', 'fired at', 'outcome', 'execution', 'fired by node', 'detail'], fires.map((f) => [
          f.fireTime.toISOString(), f.firedAt.toISOString(), f.outcome, f.executionId ?? '-', f.node ?? '-', f.detail ?? '-',
        ])));
      }
      return 0;
    }));
}

/** Who fires a trigger by hand, for its fire log: the user running the CLI, where the system knows one. */
function whoIsAsking(): string {
  const user = osUser();
  return user === undefined ? 'the CLI' : `${user} (CLI)`;
}
