/**
 * Property tests of the cron parser against SPEC section 4: Quartz expressions generated from the
 * grammar (seconds, optional year, `?`, `L`, `L-n`, `LW`, `nW`, `n#k`, `nL`, month and day
 * names, ranges, lists and steps; day-of-week 1-7 = SUN-SAT), evaluated in UTC. A small
 * reference written from those rules, that walks the calendar day by day, must find the same
 * next fire times; an out-of-range value is refused naming its field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CronError, parseCron } from '../../src/scheduler/cron.ts';
import { propertyOptions } from '../support/property.ts';

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const DAY_MS = 86_400_000;
const MAX_YEAR = 2099;

/** A field as text and the values it selects. */
interface Field {
  text: string;
  values: Set<number>;
}

const span = (a: number, b: number, step = 1) => {
  const out: number[] = [];
  for (let v = a; v <= b; v += step) out.push(v);
  return out;
};

/** `*`, a value, a range, steps (`* /s`, `a/s`, `a-b/s`) or a list of values and ranges, over min..max. */
function setField(min: number, max: number, names?: string[]): fc.Arbitrary<Field> {
  const value = fc.integer({ min, max });
  const name = (v: number) => (names ? fc.constantFrom(String(v), names[v - min]) : fc.constant(String(v)));
  const single = value.chain((v) => name(v).map((text) => ({ text, values: new Set([v]) })));
  // A range is written with two numbers or two names (Quartz refuses a mix).
  const range = fc.tuple(value, value, fc.boolean()).map(([a, b, named]) => {
    const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
    const text = names && named ? `${names[lo - min]}-${names[hi - min]}` : `${lo}-${hi}`;
    return { text, values: new Set(span(lo, hi)) };
  });
  // Steps go up to the field's largest value (Quartz refuses 60 for seconds, 24 for hours).
  const step = fc.tuple(fc.integer({ min: 1, max }), value, value, fc.constantFrom('star', 'from', 'range')).map(([s, a, b, kind]) => {
    if (kind === 'star') return { text: `*/${s}`, values: new Set(span(min, max, s)) };
    if (kind === 'from') return { text: `${a}/${s}`, values: new Set(span(a, max, s)) };
    const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
    return { text: `${lo}-${hi}/${s}`, values: new Set(span(lo, hi, s)) };
  });
  const list = fc.array(fc.oneof(single, range), { minLength: 2, maxLength: 3 })
    .map((parts) => ({ text: parts.map((p) => p.text).join(','), values: new Set(parts.flatMap((p) => [...p.values])) }));
  return fc.oneof(fc.constant({ text: '*', values: new Set(span(min, max)) }), single, range, step, list);
}

type DayRule =
  | { kind: 'dom'; values: Set<number> }
  | { kind: 'dow'; values: Set<number> }
  | { kind: 'last'; offset: number }
  | { kind: 'lastWeekday' }
  | { kind: 'nearestWeekday'; day: number }
  | { kind: 'lastDow'; dow: number }
  | { kind: 'nthDow'; dow: number; nth: number };

/** The day-of-month and day-of-week fields (one of them `?`) and the rule they make. */
const dayFields: fc.Arbitrary<{ dom: string; dow: string; rule: DayRule }> = fc.oneof(
  setField(1, 31).map((f) => ({ dom: f.text, dow: '?', rule: { kind: 'dom', values: f.values } as DayRule })),
  setField(1, 7, DAYS).map((f) => ({ dom: '?', dow: f.text, rule: { kind: 'dow', values: f.values } as DayRule })),
  fc.constant({ dom: 'L', dow: '?', rule: { kind: 'last', offset: 0 } as DayRule }),
  fc.integer({ min: 1, max: 27 }).map((n) => ({ dom: `L-${n}`, dow: '?', rule: { kind: 'last', offset: n } as DayRule })),
  fc.constant({ dom: 'LW', dow: '?', rule: { kind: 'lastWeekday' } as DayRule }),
  fc.integer({ min: 1, max: 28 }).map((n) => ({ dom: `${n}W`, dow: '?', rule: { kind: 'nearestWeekday', day: n } as DayRule })),
  fc.integer({ min: 1, max: 7 }).map((d) => ({ dom: '?', dow: `${d}L`, rule: { kind: 'lastDow', dow: d } as DayRule })),
  fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 5 }))
    .map(([d, k]) => ({ dom: '?', dow: `${d}#${k}`, rule: { kind: 'nthDow', dow: d, nth: k } as DayRule })),
);

const yearField: fc.Arbitrary<Field | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({ text: '*', values: new Set(span(1970, MAX_YEAR)) }),
  fc.integer({ min: 2020, max: 2040 }).map((y) => ({ text: String(y), values: new Set([y]) })),
  fc.tuple(fc.integer({ min: 2020, max: 2040 }), fc.integer({ min: 0, max: 6 })).map(([y, n]) => ({ text: `${y}-${y + n}`, values: new Set(span(y, y + n)) })),
);

interface Expr {
  text: string;
  seconds: number[];
  minutes: number[];
  hours: number[];
  months: Set<number>;
  years?: Set<number>;
  rule: DayRule;
}

const expressions: fc.Arbitrary<Expr> = fc
  .record({ s: setField(0, 59), m: setField(0, 59), h: setField(0, 23), day: dayFields, mon: setField(1, 12, MONTHS), year: yearField })
  .map(({ s, m, h, day, mon, year }) => ({
    text: [s.text, m.text, h.text, day.dom, mon.text, day.dow, ...(year ? [year.text] : [])].join(' '),
    seconds: [...s.values].sort((a, b) => a - b),
    minutes: [...m.values].sort((a, b) => a - b),
    hours: [...h.values].sort((a, b) => a - b),
    months: mon.values,
    years: year?.values,
    rule: day.rule,
  }));

const isWeekday = (y: number, m: number, d: number) => {
  const w = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  return w !== 0 && w !== 6;
};

/** Whether the rules of SPEC section 4 (Quartz's) select this day (UTC). */
function dayMatches(e: Expr, day: Date): boolean {
  const [y, m, d] = [day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate()];
  if (!e.months.has(m) || (e.years && !e.years.has(y))) return false;
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const dow = day.getUTCDay() + 1; // 1-7 = SUN-SAT
  const r = e.rule;
  switch (r.kind) {
    case 'dom': return r.values.has(d);
    case 'dow': return r.values.has(dow);
    case 'last': return d === last - r.offset;
    case 'lastWeekday': {
      let w = last;
      while (!isWeekday(y, m, w)) w--;
      return d === w;
    }
    case 'nearestWeekday': {
      // The weekday nearest to day n, in the same month.
      const w = new Date(Date.UTC(y, m - 1, r.day)).getUTCDay();
      const target = w === 6 ? (r.day === 1 ? 3 : r.day - 1) : w === 0 ? (r.day === last ? r.day - 2 : r.day + 1) : r.day;
      return d === target;
    }
    case 'lastDow': return dow === r.dow && d + 7 > last;
    case 'nthDow': return dow === r.dow && Math.ceil(d / 7) === r.nth;
  }
}

/** The first fire time strictly after `after`, walking the calendar day by day up to MAX_YEAR. */
function referenceNext(e: Expr, after: Date): Date | null {
  const t = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  for (let day = Math.floor(t / DAY_MS) * DAY_MS; new Date(day).getUTCFullYear() <= MAX_YEAR; day += DAY_MS) {
    if (!dayMatches(e, new Date(day))) continue;
    for (const h of e.hours) {
      if (day + (h + 1) * 3_600_000 <= t) continue;
      for (const m of e.minutes) {
        if (day + h * 3_600_000 + (m + 1) * 60_000 <= t) continue;
        for (const s of e.seconds) {
          const at = day + h * 3_600_000 + m * 60_000 + s * 1000;
          if (at >= t) return new Date(at);
        }
      }
    }
  }
  return null;
}

const instants = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2042-12-31T23:59:59Z'), noInvalidDate: true });

describe('cron parser against SPEC section 4 (property-based)', () => {
  it('finds the same next fire times as a day-by-day reference of the rules', () => {
    fc.assert(
      fc.property(expressions, instants, (e, from) => {
        const schedule = parseCron(e.text);
        let at: Date | null = from;
        for (let i = 0; i < 3 && at !== null; i++) {
          const expected = referenceNext(e, at);
          const actual = schedule.next(at);
          expect(actual?.toISOString() ?? null, `${e.text} after ${at.toISOString()}`).toBe(expected?.toISOString() ?? null);
          at = actual;
        }
      }),
      propertyOptions(),
    );
  });

  it('refuses a value out of its field\'s range, naming the field', () => {
    const FIELDS: [string, number, number][] = [['second', 0, 59], ['minute', 0, 59], ['hour', 0, 23], ['day-of-month', 1, 31], ['month', 1, 12], ['day-of-week', 1, 7], ['year', 1970, MAX_YEAR]];
    const cases = fc.tuple(fc.integer({ min: 0, max: FIELDS.length - 1 }), fc.integer({ min: 1, max: 500 }), fc.boolean());
    fc.assert(
      fc.property(cases, ([i, by, below]) => {
        const [name, min, max] = FIELDS[i];
        const bad = below ? min - by : max + by;
        if (bad < 0) return; // a minus sign is another error (a range)
        const fields = ['0', '0', '0', '?', '*', '?', '*'];
        fields[i] = String(bad);
        if (i === 3) fields[5] = '?';
        if (i === 5) fields[3] = '?';
        if (fields[3] === '?' && fields[5] === '?') fields[3] = '*';
        let error: unknown;
        try {
          parseCron(fields.join(' '));
        } catch (err) {
          error = err;
        }
        expect(error, fields.join(' ')).toBeInstanceOf(CronError);
        expect((error as CronError).field, fields.join(' ')).toBe(name);
      }),
      propertyOptions(),
    );
  });
});
