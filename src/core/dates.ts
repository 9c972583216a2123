/**
 * Dates and date-times given as text: job parameters of type date, `nightshift cron --from`, and
 * the API's `from`/`to` filters of executions. All read the same ISO-8601 forms the same way, here.
 */
import { UsageError } from './errors.ts';

/** A date, or a date and a time (T or a space between) with seconds, a fraction and an offset if wanted. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** What the accepted forms are, for error messages. */
export const ISO_DATE_FORMS = 'an ISO-8601 date or date-time such as 2024-01-15 or 2024-01-15T10:00:00Z (UTC unless it ends in Z or an offset)';

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
 * An ISO_DATE text with a time and no offset, as UTC: `new Date()` reads such a text in the
 * machine's time zone (and a date alone in UTC), so the same command would mean another instant
 * on each machine of a cluster.
 */
function asUtc(text: string): string {
  return /[T ]\d{2}:\d{2}/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/.test(text) ? `${text.replace(' ', 'T')}Z` : text;
}

/**
 * The instant an ISO-8601 date or date-time text names, or undefined when it names none: a date
 * alone is its midnight UTC, a time without an offset is UTC, and an impossible calendar date
 * (2024-02-30) or time (25:00) is refused rather than rolled over. Surrounding blanks are ignored.
 */
export function parseIsoDate(text: string): Date | undefined {
  const t = text.trim();
  if (!ISO_DATE.test(t) || !calendarDateExists(t)) return undefined;
  const d = new Date(asUtc(t));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** parseIsoDate, or a UsageError naming `what` (an option, a field) and the bad value. */
export function isoDateOption(what: string, text: string): Date {
  const d = parseIsoDate(text);
  if (!d) throw new UsageError(`${what} must be ${ISO_DATE_FORMS}, got ${JSON.stringify(text)}`);
  return d;
}
