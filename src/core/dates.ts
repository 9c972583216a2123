/**
 * Dates and date-times given as text: job parameters of type date, `nightshift cron --from`, and
 * the API's `from`/`to` filters of executions. All read the same ISO-8601 forms the same way, here.
 */
import { UsageError } from './errors.ts';

/**
 * A date, or a date and a time (T, t or a space between) with seconds, a fraction and an offset
 * if wanted (Z, z, +HH, +HHMM or +HH:MM): what JSON Schema's date-time accepts, and a bit more.
 * Hours run to 23 and minutes and seconds to 59 (24:00 would be the next day).
 */
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}([Tt ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?$/;

/** What the accepted forms are, for error messages. */
export const ISO_DATE_FORMS = 'an ISO-8601 date or date-time such as 2024-01-15 or 2024-01-15T10:00:00+02:00 (a time without an offset is UTC)';

/**
 * Whether the calendar date an ISO_DATE text starts with exists. `new Date('2024-02-30')` does not
 * refuse a day beyond its month's end but rolls it over (to March 1), so a typo would run the job
 * for another day.
 */
function calendarDateExists(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return days !== undefined && day >= 1 && day <= days;
}

/**
 * An ISO_DATE text as `new Date()` reads it the same on every machine: T and Z upper case, the
 * offset as +HH:MM, and a time without an offset as UTC (`new Date()` reads such a text in the
 * machine's time zone, and a date alone in UTC, so the same command would mean another instant on
 * each machine of a cluster).
 */
function normalized(text: string): string {
  if (text.length === 10) return text;
  // After the date only T and Z are letters.
  const t = `${text.slice(0, 10)}T${text.slice(11)}`.toUpperCase();
  const zone = /([+-])(\d{2}):?(\d{2})?$/.exec(t.slice(16));
  if (zone) return `${t.slice(0, t.length - zone[0].length)}${zone[1]}${zone[2]}:${zone[3] ?? '00'}`;
  return t.endsWith('Z') ? t : `${t}Z`;
}

/**
 * The instant an ISO-8601 date or date-time text names, or undefined when it names none: a date
 * alone is its midnight UTC, a time without an offset is UTC, and an impossible calendar date
 * (2024-02-30) or time (25:00) is refused rather than rolled over. Surrounding blanks are ignored.
 */
export function parseIsoDate(text: string): Date | undefined {
  const t = text.trim();
  if (!ISO_DATE.test(t) || !calendarDateExists(t)) return undefined;
  const d = new Date(normalized(t));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * What to add to a refusal of `text` that parseIsoDate refused: that its day does not exist,
 * when it has the form of a date (2024-02-30); empty otherwise.
 */
export function whyNoDate(text: string): string {
  const t = text.trim();
  return ISO_DATE.test(t) && !calendarDateExists(t) ? ' (there is no such day)' : '';
}

/** parseIsoDate, or a UsageError naming `what` (an option, a field) and the bad value. */
export function isoDateOption(what: string, text: string): Date {
  const d = parseIsoDate(text);
  if (!d) throw new UsageError(`${what} must be ${ISO_DATE_FORMS}, got ${JSON.stringify(text)}${whyNoDate(text)}`);
  return d;
}

/**
 * A date-time with an explicit offset (Z or +HH:MM), as schedules take their `at`, `startAt` and
 * `endAt`: a local time alone would name another instant on each machine, and a date alone would
 * hide which midnight was meant.
 */
const ZONED_INSTANT = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)$/;

/** What instantOption accepts, for error messages. */
export const INSTANT_FORMS = 'an ISO-8601 date-time with an offset or Z, such as 2027-01-15T10:00:00Z or 2027-01-15T11:00:00+01:00';

/**
 * A Date (that is a valid time) or an ISO-8601 date-time text with an explicit offset, as an
 * instant; anything else (a local time without an offset, a date alone, an impossible date) is a
 * UsageError naming `what` (an option or a field) and the value.
 */
export function instantOption(what: string, value: unknown): Date {
  if (value instanceof Date) {
    if (!Number.isNaN(value.getTime())) return value;
    throw new UsageError(`${what} is an invalid Date`);
  }
  if (typeof value === 'string') {
    const t = value.trim();
    const d = ZONED_INSTANT.test(t) ? parseIsoDate(t) : undefined;
    if (d) return d;
    if (ISO_DATE.test(t) && !whyNoDate(t)) throw new UsageError(`${what} must name its offset (Z or +HH:MM), got ${JSON.stringify(value)}: a local time is ambiguous across machines and zones`);
    throw new UsageError(`${what} must be ${INSTANT_FORMS}, got ${JSON.stringify(value)}${whyNoDate(t)}`);
  }
  throw new UsageError(`${what} must be ${INSTANT_FORMS} or a Date, got ${JSON.stringify(value) ?? typeof value}`);
}

/**
 * The calendar date of `instant` in IANA time zone `tz`, moved by `offsetDays`, as `YYYY-MM-DD`
 * (a business date: `calendarDay(fireTime, 'Europe/Paris', -1)` is the day before, in Paris).
 */
export function calendarDay(instant: Date, tz: string, offsetDays = 0): string {
  if (!Number.isInteger(offsetDays)) throw new UsageError(`a day offset must be a whole number of days, got ${String(offsetDays)}`);
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(instant);
  const part = (type: string) => Number(parts.find((x) => x.type === type)?.value);
  // Days are counted in UTC, where every day has 24 hours, from the zone's date at noon.
  const day = new Date(Date.UTC(part('year'), part('month') - 1, part('day') + offsetDays, 12));
  return day.toISOString().slice(0, 10);
}
