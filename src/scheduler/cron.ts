/**
 * Quartz-compatible cron expressions.
 *
 * Implements the syntax and the fire-time semantics of Quartz 2.3's
 * `org.quartz.CronExpression` (`getNextValidTimeAfter`), including its
 * behaviour around daylight-saving transitions. Time-zone math uses only the
 * built-in `Intl` API.
 *
 * Format: `second minute hour day-of-month month day-of-week [year]`.
 *
 * How Quartz behaves (and therefore how this module behaves) around DST:
 * - A wall-clock time that does not exist (spring-forward gap) is resolved the
 *   way `java.util.GregorianCalendar` resolves it: with the offset in force
 *   *before* the transition, i.e. it is pushed forward by the DST amount.
 *   Quartz then notices that the hour changed and moves on, so a daily
 *   `0 30 2 * * ?` in New York does NOT fire on the spring-forward day, but an
 *   hourly `0 30 * * * ?` fires at 03:30 EDT (the instant 02:30 EST would be).
 *   Likewise a daily `0 0 0 * * ?` in America/Santiago skips the day whose
 *   midnight does not exist.
 * - An ambiguous wall-clock time (fall-back overlap) is resolved with the
 *   offset in force *after* the transition, i.e. the second occurrence. A
 *   daily `0 30 1 * * ?` in New York fires once, at 01:30 EST. Because Quartz
 *   recomputes the instant from wall-clock fields at almost every step, an
 *   expression that fires every minute/hour skips the first occurrence of the
 *   repeated hour entirely (it jumps from 00:59 EDT to 01:00 EST).
 *
 * Deliberate deviations from Quartz 2.3.2 (all about *accepting* input; fire
 * times of expressions both accept are identical):
 * - Quartz silently ignores a lot of malformed input (extra fields, trailing
 *   characters after a value, `MONDAY`, a step after a name such as
 *   `MON-FRI/2`, `W` after a range, values after `n#k`/`nW` in a list, step 0
 *   or negative, `L` in the hour field, ...). This module rejects all of
 *   those with a {@link CronError} instead of guessing.
 * - Years must be within 1970-2099 (the documented Quartz range; Quartz
 *   itself does not check). An unrestricted year field means 1970-2099,
 *   whereas Quartz uses 1970 to (current year + 100), which depends on the
 *   clock. So no fire time after 2099 is ever produced.
 * - For `nW`/`LW` Quartz compares a candidate against a `Calendar` that
 *   carries the *current wall-clock milliseconds*, so its result can depend
 *   on the time of the call when `after` has a non-zero millisecond part. This
 *   module resolves that tie deterministically (the candidate is kept).
 *
 * @module
 */

const FIELD_NAMES = [
  'second',
  'minute',
  'hour',
  'day-of-month',
  'month',
  'day-of-week',
  'year',
] as const;

const DAY_OF_MONTH = 3;
const MONTH = 4;
const DAY_OF_WEEK = 5;
const YEAR = 6;

/** Smallest and largest year a schedule can fire in. */
const MIN_YEAR = 1970;
const MAX_YEAR = 2099;

const FIELD_MIN = [0, 0, 0, 1, 1, 1, MIN_YEAR];
const FIELD_MAX = [59, 59, 23, 31, 12, 7, MAX_YEAR];
/** Largest step accepted per field (Quartz's `checkIncrementRange`). */
const STEP_MAX = [59, 59, 23, 31, 12, 7, MAX_YEAR - MIN_YEAR];
/** Modulus used for wrap-around ranges such as `22-2` (Quartz's `addToSet`). */
const WRAP = [60, 60, 24, 31, 12, 7, 0];

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Error thrown for an invalid cron expression or an unknown time zone. */
export class CronError extends Error {
  /**
   * The field at fault: one of `second`, `minute`, `hour`, `day-of-month`,
   * `month`, `day-of-week`, `year`, or `expression` (e.g. wrong number of
   * fields) or `time zone`.
   */
  readonly field: string;
  /** The expression as given by the caller. */
  readonly expression: string;
  /** What is wrong with the field. */
  readonly reason: string;

  /** `context` names where the expression came from, before the message (e.g. `schedule nightly`). */
  constructor(expression: string, field: string, reason: string, context?: string) {
    super(`${context ? `${context}: ` : ''}invalid cron expression ${JSON.stringify(expression)}: ${field}: ${reason}`);
    this.name = 'CronError';
    this.field = field;
    this.expression = expression;
    this.reason = reason;
  }
}

/** A parsed cron expression bound to a time zone. */
export interface CronSchedule {
  /** The expression as given. */
  readonly expression: string;
  /** IANA time zone the expression is evaluated in. */
  readonly timeZone: string;
  /**
   * The first fire time strictly after `after`, or `null` if the schedule
   * never fires again. Fire times always have zero milliseconds.
   */
  next(after: Date): Date | null;
}

/**
 * Parses a Quartz cron expression.
 *
 * @param expression six or seven whitespace-separated fields
 * @param timeZone IANA time-zone name (default `UTC`)
 * @throws CronError if the expression is invalid (the error's `field` names
 *   the offending field) or the time zone is unknown (`field` = `time zone`)
 */
export function parseCron(expression: string, timeZone = 'UTC'): CronSchedule {
  const spec = parseSpec(expression);
  const zone = getZone(expression, timeZone);
  return new Schedule(expression, timeZone, spec, zone);
}

/**
 * The next `count` fire times of `expression` strictly after `from` (fewer if
 * the schedule ends).
 *
 * @throws CronError as {@link parseCron}
 */
export function nextFireTimes(
  expression: string,
  opts: { from: Date; count: number; timeZone?: string },
): Date[] {
  const schedule = parseCron(expression, opts.timeZone);
  if (!Number.isInteger(opts.count) || opts.count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${opts.count}`);
  }
  const out: Date[] = [];
  let at: Date | null = opts.from;
  while (out.length < opts.count) {
    at = schedule.next(at);
    if (at === null) break;
    out.push(at);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

interface Spec {
  /** Sorted allowed values per field (Quartz numbering: months 1-12, days of week 1=SUN..7=SAT). */
  readonly sets: number[][];
  readonly domNoSpec: boolean;
  readonly dowNoSpec: boolean;
  /** `L`, `L-n`, `LW`, `L-nW` in day-of-month. */
  readonly lastDayOfMonth: boolean;
  readonly lastDayOffset: number;
  /** `nW` / `LW`. */
  readonly nearestWeekday: boolean;
  /** `nL` in day-of-week. */
  readonly lastDayOfWeek: boolean;
  /** `n#k` in day-of-week: k, or 0. */
  readonly nthDayOfWeek: number;
}

/**
 * What to say of a five-field (Unix) cron: Quartz's starts with a seconds field, and one of
 * day-of-month and day-of-week is `?`. Suggests the Quartz form when it parses.
 */
function unixCronHint(tokens: readonly string[]): string {
  const [minute, hour, dom, month, dow] = tokens;
  const hint = '; this looks like a Unix cron: a Quartz cron starts with a seconds field';
  const quartz = ['0', minute, hour, dow === '*' ? dom : dom === '*' ? '?' : dom, month, dow === '*' ? '?' : dow].join(' ');
  try {
    parseSpec(quartz);
  } catch {
    return `${hint} (e.g. "0 * * * * ?" for every minute; one of day-of-month and day-of-week is '?')`;
  }
  // Unix numbers days of the week 0-6 from Sunday, Quartz 1-7.
  const days = /\d/.test(dow) ? ' (check day-of-week: Quartz numbers the days 1-7 from Sunday, or use SUN-SAT)' : '';
  return `${hint}: try "${quartz}"${days}`;
}

function parseSpec(expression: string): Spec {
  if (typeof expression !== 'string') {
    throw new CronError(String(expression), 'expression', 'must be a string');
  }
  const tokens = expression.trim().split(/\s+/).filter((t) => t !== '');
  if (tokens.length < 6 || tokens.length > 7) {
    throw new CronError(
      expression,
      'expression',
      `expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got ${tokens.length}` +
        (tokens.length === 5 ? unixCronHint(tokens) : ''),
    );
  }
  const state = {
    sets: [] as number[][],
    domNoSpec: false,
    dowNoSpec: false,
    lastDayOfMonth: false,
    lastDayOffset: 0,
    nearestWeekday: false,
    lastDayOfWeek: false,
    nthDayOfWeek: 0,
  };
  for (let f = 0; f < 7; f++) {
    const token = f < tokens.length ? tokens[f].toUpperCase() : '*';
    const fail = (reason: string): never => {
      throw new CronError(expression, FIELD_NAMES[f], reason);
    };
    state.sets.push(parseField(f, token, state, fail));
  }
  if (state.domNoSpec && state.dowNoSpec) {
    throw new CronError(
      expression,
      'day-of-week',
      "'?' cannot be used in both day-of-month and day-of-week; exactly one of them must be '?'",
    );
  }
  if (!state.domNoSpec && !state.dowNoSpec) {
    throw new CronError(
      expression,
      'day-of-week',
      "specifying both a day-of-month and a day-of-week is not supported; use '?' in one of them",
    );
  }
  return state;
}

interface SpecState {
  domNoSpec: boolean;
  dowNoSpec: boolean;
  lastDayOfMonth: boolean;
  lastDayOffset: number;
  nearestWeekday: boolean;
  lastDayOfWeek: boolean;
  nthDayOfWeek: number;
}

function parseField(f: number, token: string, state: SpecState, fail: (reason: string) => never): number[] {
  const min = FIELD_MIN[f];
  const max = FIELD_MAX[f];
  const isList = token.includes(',');

  if (token === '?') {
    if (f === DAY_OF_MONTH) state.domNoSpec = true;
    else if (f === DAY_OF_WEEK) state.dowNoSpec = true;
    else fail("'?' is only allowed in day-of-month or day-of-week");
    return [];
  }
  if (token.includes('?')) {
    fail(
      f === DAY_OF_MONTH || f === DAY_OF_WEEK
        ? "'?' must be the only value in the field"
        : "'?' is only allowed in day-of-month or day-of-week",
    );
  }

  if (f === DAY_OF_MONTH && token.startsWith('L')) {
    const m = /^L(?:-(\d+))?(W?)$/.exec(token);
    if (isList) fail("'L' cannot be combined with other days of the month");
    if (!m) fail(`invalid 'L' syntax "${token}" (expected L, L-n, LW or L-nW)`);
    const offset = m![1] === undefined ? 0 : Number(m![1]);
    if (offset > 30) fail(`offset from the last day must be between 0 and 30, got ${offset}`);
    state.lastDayOfMonth = true;
    state.lastDayOffset = offset;
    state.nearestWeekday = m![2] === 'W';
    return [];
  }
  if (f === DAY_OF_MONTH && token.includes('W')) {
    const m = /^(\d+)W$/.exec(token);
    if (isList) fail("'W' cannot be combined with other days of the month");
    if (!m) fail(`invalid 'W' syntax "${token}" (expected nW with a single day, e.g. 15W)`);
    const day = Number(m![1]);
    if (day < 1 || day > 31) fail(`${day} is out of range 1-31`);
    state.nearestWeekday = true;
    return [day];
  }
  if (f === DAY_OF_WEEK && token === 'L') {
    // `L` alone in day-of-week means Saturday (Quartz: addToSet(7, 7, 0)).
    return [7];
  }
  if (f === DAY_OF_WEEK && (token.includes('L') || token.includes('#'))) {
    const m = /^(\d+|[A-Z]{3})(?:(L)|#(\d*))$/.exec(token);
    const what = token.includes('#') ? "'#'" : "'L'";
    if (isList) fail(`${what} cannot be combined with other days of the week`);
    if (!m) fail(`invalid ${what} syntax "${token}"`);
    const day = parseValue(f, m![1], fail);
    if (m![2] === 'L') {
      state.lastDayOfWeek = true;
    } else {
      const nth = m![3] === '' ? NaN : Number(m![3]);
      if (!(nth >= 1 && nth <= 5)) fail(`'#' must be followed by a number between 1 and 5, got "${m![3]}"`);
      state.nthDayOfWeek = nth;
    }
    return [day];
  }

  const values = new Set<number>();
  for (const item of token.split(',')) {
    if (item === '') fail('empty value in list');
    const m = /^(?:(\*)|([0-9]+|[A-Z]+)(?:-([0-9]+|[A-Z]+))?)(?:\/(.*))?$/.exec(item);
    if (!m) fail(`invalid value "${item}"`);
    const [, star, a, b, stepText] = m!;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]+$/.test(stepText)) fail(`step must be a positive integer, got "${stepText}"`);
      step = Number(stepText);
      if (step < 1 || step > STEP_MAX[f]) fail(`step ${stepText} is out of range 1-${STEP_MAX[f]}`);
      if (a !== undefined && /[A-Z]/.test(a + (b ?? ''))) {
        fail(`a step cannot follow a name ("${item}")`);
      }
    }
    let start: number;
    let end: number;
    if (star) {
      start = min;
      end = max;
    } else {
      if (b !== undefined && /[A-Z]/.test(a) !== /[A-Z]/.test(b)) {
        fail(`cannot mix names and numbers in a range ("${item}")`);
      }
      start = parseValue(f, a, fail);
      if (b !== undefined) end = parseValue(f, b, fail);
      else end = stepText !== undefined ? max : start;
    }
    if (end >= start) {
      for (let v = start; v <= end; v += step) values.add(v);
    } else {
      // Wrap-around range, e.g. hours 22-2 or FRI-MON (Quartz's addToSet):
      // count up past the maximum and take the value modulo the field size;
      // 1-based fields map 0 to their maximum.
      if (f === YEAR) fail(`range start ${start} is after range end ${end}`);
      const wrap = WRAP[f];
      for (let v = start; v <= end + wrap; v += step) {
        let x = v % wrap;
        if (x === 0 && min === 1) x = wrap;
        values.add(x);
      }
    }
  }
  return [...values].sort((x, y) => x - y);
}

function parseValue(f: number, text: string, fail: (reason: string) => never): number {
  const min = FIELD_MIN[f];
  const max = FIELD_MAX[f];
  if (/^[0-9]+$/.test(text)) {
    const v = Number(text);
    if (v < min || v > max) fail(`${text} is out of range ${min}-${max}`);
    return v;
  }
  if (f === MONTH) {
    const i = MONTH_NAMES.indexOf(text);
    if (i < 0) fail(`invalid month name "${text}" (expected JAN-DEC)`);
    return i + 1;
  }
  if (f === DAY_OF_WEEK) {
    const i = DAY_NAMES.indexOf(text);
    if (i < 0) fail(`invalid day-of-week name "${text}" (expected SUN-SAT)`);
    return i + 1;
  }
  return fail(`invalid value "${text}"`);
}

// ---------------------------------------------------------------------------
// Time zones (Intl only)
// ---------------------------------------------------------------------------

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Offset lookups for one IANA zone. */
class Zone {
  private readonly dtf: Intl.DateTimeFormat | null;
  /** Offset per UTC hour bucket; NaN when a transition falls inside the bucket. */
  private readonly cache = new Map<number, number>();

  constructor(readonly id: string) {
    const dtf = new Intl.DateTimeFormat('en-US', {
      timeZone: id,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    const resolved = dtf.resolvedOptions().timeZone;
    this.dtf = resolved === 'UTC' || resolved === 'Etc/UTC' ? null : dtf;
  }

  /** UTC offset in ms at instant `t`. */
  offsetAt(t: number): number {
    if (this.dtf === null) return 0;
    const bucket = Math.floor(t / HOUR_MS);
    let cached = this.cache.get(bucket);
    if (cached === undefined) {
      const a = this.rawOffset(bucket * HOUR_MS);
      const b = this.rawOffset(bucket * HOUR_MS + HOUR_MS - 1000);
      cached = a === b ? a : NaN;
      if (this.cache.size > 50_000) this.cache.clear();
      this.cache.set(bucket, cached);
    }
    return Number.isNaN(cached) ? this.rawOffset(t) : cached;
  }

  private rawOffset(t: number): number {
    const seconds = Math.floor(t / 1000) * 1000;
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    let second = 0;
    let bc = false;
    for (const part of this.dtf!.formatToParts(seconds)) {
      switch (part.type) {
        case 'year': year = Number(part.value); break;
        case 'month': month = Number(part.value); break;
        case 'day': day = Number(part.value); break;
        case 'hour': hour = Number(part.value) % 24; break;
        case 'minute': minute = Number(part.value); break;
        case 'second': second = Number(part.value); break;
        case 'era': bc = /^B/i.test(part.value); break;
        default: break;
      }
    }
    if (bc) year = 1 - year;
    return utc(year, month - 1, day, hour, minute, second) - seconds;
  }

  /**
   * Instant for a wall-clock time (given as ms since the epoch as if the wall
   * clock were UTC), resolved like `java.util.GregorianCalendar` does: a time
   * in a gap uses the offset before the transition, an ambiguous time uses the
   * offset after it.
   */
  wallToInstant(wall: number): number {
    if (this.dtf === null) return wall;
    const before = this.offsetAt(wall - DAY_MS);
    const after = this.offsetAt(wall + DAY_MS);
    if (before === after) return wall - after;
    // One transition near `wall`: Java treats the wall time as "after the
    // transition" iff wall >= transition + offsetAfter.
    return this.offsetAt(wall - after) === after ? wall - after : wall - before;
  }
}

/** Date.UTC without the 0-99 => 1900-1999 year mapping. */
function utc(year: number, month0: number, day: number, hour = 0, minute = 0, second = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

const zoneCache = new Map<string, Zone>();

function getZone(expression: string, timeZone: string): Zone {
  let zone = zoneCache.get(timeZone);
  if (zone === undefined) {
    if (typeof timeZone !== 'string' || timeZone === '') {
      throw new CronError(expression, 'time zone', `unknown time zone ${JSON.stringify(timeZone)}`);
    }
    try {
      zone = new Zone(timeZone);
    } catch {
      throw new CronError(expression, 'time zone', `unknown time zone ${JSON.stringify(timeZone)}`);
    }
    zoneCache.set(timeZone, zone);
  }
  return zone;
}

// ---------------------------------------------------------------------------
// A minimal lenient calendar with java.util.GregorianCalendar's recompute
// semantics: every `set` invalidates the instant, and the next read recomputes
// it from the (possibly out-of-range) wall-clock fields, resolving DST gaps
// and overlaps as Java does. Quartz's DST behaviour depends on exactly this.
// ---------------------------------------------------------------------------

const C_YEAR = 0;
const C_MONTH = 1; // 0-based, as in Java
const C_DAY = 2;
const C_HOUR = 3;
const C_MINUTE = 4;
const C_SECOND = 5;

class LenientCalendar {
  private readonly f = [1970, 0, 1, 0, 0, 0];
  private time = 0;
  private dirty = false;

  constructor(private readonly zone: Zone) {}

  setTime(ms: number): void {
    this.time = ms;
    this.computeFields();
  }

  get(field: number): number {
    this.complete();
    return this.f[field];
  }

  set(field: number, value: number): void {
    this.f[field] = value;
    this.dirty = true;
  }

  /** Day of week of the current date, 1 = Sunday ... 7 = Saturday. */
  dayOfWeek(): number {
    this.complete();
    return new Date(utc(this.f[C_YEAR], this.f[C_MONTH], this.f[C_DAY])).getUTCDay() + 1;
  }

  /** `Calendar.add(YEAR, n)`: keeps month and day, pinning Feb 29 to Feb 28. */
  addYears(n: number): void {
    this.complete();
    const year = this.f[C_YEAR] + n;
    this.f[C_YEAR] = year;
    this.f[C_DAY] = Math.min(this.f[C_DAY], lastDayOfMonth(this.f[C_MONTH] + 1, year));
    this.dirty = true;
  }

  getTime(): number {
    this.complete();
    return this.time;
  }

  private complete(): void {
    if (!this.dirty) return;
    const [y, mo, d, h, mi, s] = this.f;
    this.time = this.zone.wallToInstant(utc(y, mo, d, h, mi, s));
    this.computeFields();
  }

  private computeFields(): void {
    const wall = new Date(this.time + this.zone.offsetAt(this.time));
    this.f[C_YEAR] = wall.getUTCFullYear();
    this.f[C_MONTH] = wall.getUTCMonth();
    this.f[C_DAY] = wall.getUTCDate();
    this.f[C_HOUR] = wall.getUTCHours();
    this.f[C_MINUTE] = wall.getUTCMinutes();
    this.f[C_SECOND] = wall.getUTCSeconds();
    this.dirty = false;
  }
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Days in `month` (1-12) of `year`. */
function lastDayOfMonth(month: number, year: number): number {
  switch (month) {
    case 2:
      return isLeapYear(year) ? 29 : 28;
    case 4:
    case 6:
    case 9:
    case 11:
      return 30;
    default:
      return 31;
  }
}

/** Smallest element of sorted `values` that is >= `v`, or undefined. */
function ceiling(values: readonly number[], v: number): number | undefined {
  for (const x of values) if (x >= v) return x;
  return undefined;
}

// ---------------------------------------------------------------------------
// Fire-time computation
// ---------------------------------------------------------------------------

class Schedule implements CronSchedule {
  constructor(
    readonly expression: string,
    readonly timeZone: string,
    private readonly spec: Spec,
    private readonly zone: Zone,
  ) {}

  next(after: Date): Date | null {
    const t = after instanceof Date ? after.getTime() : NaN;
    if (!Number.isFinite(t)) throw new TypeError('next(): "after" must be a valid Date');
    const result = nextAfter(this.spec, this.zone, t);
    return result === null ? null : new Date(result);
  }
}

/**
 * Quartz's CronExpression.getTimeAfter: advance one field at a time from
 * second to year; whenever a field has to move, reset the smaller fields and
 * start over. Mirrors Quartz step by step (including which calendar fields
 * are written when), because its DST behaviour emerges from that order.
 */
function nextAfter(spec: Spec, zone: Zone, after: number): number | null {
  const [seconds, minutes, hours, daysOfMonth, months, daysOfWeek, years] = spec.sets;
  // Quartz works from after + 1s, truncated to the second.
  const afterTime = after + 1000;
  const afterSecond = Math.floor(afterTime / 1000) * 1000;
  const cl = new LenientCalendar(zone);
  cl.setTime(afterSecond);
  cl.set(C_SECOND, cl.get(C_SECOND)); // Quartz: cl.set(MILLISECOND, 0) => recompute from wall time

  const setHour = (hour: number): void => {
    // Quartz's setCalendarHour: if the hour does not exist (DST gap), use the next one.
    cl.set(C_HOUR, hour);
    if (cl.get(C_HOUR) !== hour && hour !== 24) cl.set(C_HOUR, hour + 1);
  };
  const resetTo = (day: number, month0: number): void => {
    cl.set(C_SECOND, 0);
    cl.set(C_MINUTE, 0);
    cl.set(C_HOUR, 0);
    cl.set(C_DAY, day);
    cl.set(C_MONTH, month0);
  };
  /** Wall-clock candidate (lenient fields) resolved to an instant; "before" Quartz's afterTime? */
  const isBeforeAfterTime = (year: number, month0: number, day: number, hr: number, min: number, sec: number): boolean =>
    zone.wallToInstant(utc(year, month0, day, hr, min, sec)) < afterSecond;
  /** Quartz's nearest-weekday adjustment of `day` in `month` (1-12) of `year`. */
  const nearestWeekday = (year: number, month: number, day: number): number => {
    const ldom = lastDayOfMonth(month, year);
    const dow = new Date(utc(year, month - 1, day)).getUTCDay() + 1;
    if (dow === 7 && day === 1) return day + 2;
    if (dow === 7) return day - 1;
    if (dow === 1 && day === ldom) return day - 2;
    if (dow === 1) return day + 1;
    return day;
  };

  for (;;) {
    if (cl.get(C_YEAR) > MAX_YEAR) return null;

    // second
    let sec = cl.get(C_SECOND);
    let min = cl.get(C_MINUTE);
    const s = ceiling(seconds, sec);
    if (s !== undefined) {
      sec = s;
    } else {
      sec = seconds[0];
      min++;
      cl.set(C_MINUTE, min);
    }
    cl.set(C_SECOND, sec);

    // minute
    min = cl.get(C_MINUTE);
    let hr = cl.get(C_HOUR);
    let t = -1;
    const m = ceiling(minutes, min);
    if (m !== undefined) {
      t = min;
      min = m;
    } else {
      min = minutes[0];
      hr++;
    }
    if (min !== t) {
      cl.set(C_SECOND, 0);
      cl.set(C_MINUTE, min);
      setHour(hr);
      continue;
    }
    cl.set(C_MINUTE, min);

    // hour
    hr = cl.get(C_HOUR);
    let day = cl.get(C_DAY);
    t = -1;
    const h = ceiling(hours, hr);
    if (h !== undefined) {
      t = hr;
      hr = h;
    } else {
      hr = hours[0];
      day++;
    }
    if (hr !== t) {
      cl.set(C_SECOND, 0);
      cl.set(C_MINUTE, 0);
      cl.set(C_DAY, day);
      setHour(hr);
      continue;
    }
    cl.set(C_HOUR, hr);

    // day
    day = cl.get(C_DAY);
    let mon = cl.get(C_MONTH) + 1;
    t = -1;
    let tmon = mon;
    if (!spec.domNoSpec) {
      const year = cl.get(C_YEAR);
      if (spec.lastDayOfMonth && !spec.nearestWeekday) {
        t = day;
        day = lastDayOfMonth(mon, year) - spec.lastDayOffset;
        if (t > day) {
          mon++;
          if (mon > 12) {
            mon = 1;
            tmon = -1; // force the reset below
            cl.addYears(1);
          }
          day = 1;
        }
      } else if (spec.nearestWeekday) {
        t = day;
        const target = spec.lastDayOfMonth ? lastDayOfMonth(mon, year) - spec.lastDayOffset : daysOfMonth[0];
        day = nearestWeekday(year, mon, target);
        if (isBeforeAfterTime(year, mon - 1, day, hr, min, sec)) {
          day = spec.lastDayOfMonth ? 1 : daysOfMonth[0];
          mon++;
        }
      } else {
        const d = ceiling(daysOfMonth, day);
        if (d !== undefined) {
          t = day;
          day = d;
          if (day > lastDayOfMonth(mon, year)) {
            day = daysOfMonth[0];
            mon++;
          }
        } else {
          day = daysOfMonth[0];
          mon++;
        }
      }
      if (day !== t || mon !== tmon) {
        resetTo(day, mon - 1);
        continue;
      }
    } else if (spec.lastDayOfWeek) {
      // nL: the last given day of week of the month
      const dow = daysOfWeek[0];
      const cDow = cl.dayOfWeek();
      let daysToAdd = cDow < dow ? dow - cDow : cDow > dow ? dow + 7 - cDow : 0;
      const lDay = lastDayOfMonth(mon, cl.get(C_YEAR));
      if (day + daysToAdd > lDay) {
        resetTo(1, mon);
        continue;
      }
      while (day + daysToAdd + 7 <= lDay) daysToAdd += 7;
      day += daysToAdd;
      if (daysToAdd > 0) {
        resetTo(day, mon - 1);
        continue;
      }
    } else if (spec.nthDayOfWeek !== 0) {
      // n#k: the k-th given day of week of the month
      const dow = daysOfWeek[0];
      const cDow = cl.dayOfWeek();
      let daysToAdd = cDow < dow ? dow - cDow : cDow > dow ? dow + 7 - cDow : 0;
      const dayShifted = daysToAdd > 0;
      day += daysToAdd;
      let weekOfMonth = Math.floor(day / 7);
      if (day % 7 > 0) weekOfMonth++;
      daysToAdd = (spec.nthDayOfWeek - weekOfMonth) * 7;
      day += daysToAdd;
      if (daysToAdd < 0 || day > lastDayOfMonth(mon, cl.get(C_YEAR))) {
        resetTo(1, mon);
        continue;
      } else if (daysToAdd > 0 || dayShifted) {
        resetTo(day, mon - 1);
        continue;
      }
    } else {
      const cDow = cl.dayOfWeek();
      const dow = ceiling(daysOfWeek, cDow) ?? daysOfWeek[0];
      const daysToAdd = cDow < dow ? dow - cDow : cDow > dow ? dow + 7 - cDow : 0;
      const lDay = lastDayOfMonth(mon, cl.get(C_YEAR));
      if (day + daysToAdd > lDay) {
        resetTo(1, mon);
        continue;
      } else if (daysToAdd > 0) {
        resetTo(day + daysToAdd, mon - 1);
        continue;
      }
    }
    cl.set(C_DAY, day);

    // month
    mon = cl.get(C_MONTH) + 1;
    let year = cl.get(C_YEAR);
    if (year > MAX_YEAR) return null;
    t = -1;
    const mo = ceiling(months, mon);
    if (mo !== undefined) {
      t = mon;
      mon = mo;
    } else {
      mon = months[0];
      year++;
    }
    if (mon !== t) {
      resetTo(1, mon - 1);
      cl.set(C_YEAR, year);
      continue;
    }
    cl.set(C_MONTH, mon - 1);

    // year
    year = cl.get(C_YEAR);
    const y = ceiling(years, year);
    if (y === undefined) return null;
    if (y !== year) {
      resetTo(1, 0);
      cl.set(C_YEAR, y);
      continue;
    }
    cl.set(C_YEAR, year);
    return cl.getTime();
  }
}
