/**
 * The parameters of one firing of a trigger: the trigger's own, then what the job's
 * `firingParams` derives from the firing, then `fireTime`. Used where the scheduler fires, where
 * an operator fires now, and where a trigger is added (tried on its next fire time).
 */
import { calendarDay } from '../core/dates.ts';
import { ParameterError, errorMessage } from '../core/errors.ts';
import type { Firing, JobDefinition } from '../core/job.ts';
import { givenParams, resolveParams, type JsonParams, type ParamsSchema } from '../core/params.ts';

/** The trigger a firing belongs to: its name, time zone and stored parameters. */
export interface FiringTrigger {
  name: string;
  tz: string | null;
  params: JsonParams;
}

/** The job's firingParams threw (as opposed to returning parameters that do not fit). */
export class FiringParamsThrew extends ParameterError {}

/**
 * The raw parameters of `trigger`'s firing at `fireTime`, for a launch to type and check. Throws
 * a ParameterError naming the trigger when the job's `firingParams` throws or returns something
 * that is not an object of parameters.
 */
export function firingParams(def: JobDefinition<ParamsSchema>, trigger: FiringTrigger, fireTime: number): Record<string, unknown> {
  const at = new Date(fireTime);
  if (!def.firingParams) return { ...trigger.params, fireTime: at };
  const tz = trigger.tz ?? 'UTC';
  const firing: Firing<Record<string, unknown>> = {
    fireTime: at,
    trigger: trigger.name,
    tz,
    params: resolveParams(def.name, def.params, trigger.params, { partial: true }),
    day: (offsetDays = 0) => calendarDay(at, tz, offsetDays),
  };
  const what = (why: string) => `job ${def.name}: firingParams ${why} for the firing of schedule ${trigger.name} at ${at.toISOString()}`;
  const failed = (why: string) => new ParameterError(what(why));
  let derived: unknown;
  try {
    derived = def.firingParams(firing);
  } catch (err) {
    throw new FiringParamsThrew(what(`failed: ${errorMessage(err)}`), { cause: err });
  }
  if (typeof (derived as { then?: unknown } | null)?.then === 'function') {
    // A rejected promise nobody awaits would end the process.
    (derived as Promise<unknown>).then(undefined, () => undefined);
    throw failed('returned a promise (it runs inside the firing transaction: compute the parameters without waiting)');
  }
  if (typeof derived !== 'object' || derived === null || Array.isArray(derived)) {
    throw failed(`must return an object of parameters, returned ${Array.isArray(derived) ? 'an array' : String(derived)}`);
  }
  const given = givenParams(derived as Record<string, unknown>);
  if (Object.hasOwn(given, 'fireTime')) throw failed('returned fireTime, which the scheduler sets');
  return { ...trigger.params, ...given, fireTime: at };
}
