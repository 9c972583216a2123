/**
 * Property tests of parameter parsing (src/core/params.ts): every value of each kind survives its
 * text form and its JSON form, every malformed value and unknown name is refused with an error
 * naming the parameter, and `key=value` words split at the first `=`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParameterError } from '../../src/core/errors.ts';
import { p, paramsFromJson, paramsToJson, parseKeyValues, resolveParams, type ParamsSchema } from '../../src/core/params.ts';
import { PROTOTYPE_NAMES, propertyOptions } from '../support/property.ts';

const schema: ParamsSchema = {
  s: p.string(),
  i: p.int(),
  n: p.number(),
  d: p.date(),
  b: p.boolean(),
};

/** The ParameterError `fn` throws (fails the property when it throws nothing or something else). */
function refusal(fn: () => unknown): ParameterError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ParameterError) return err;
    throw new Error(`expected a ParameterError, got ${String(err)}`);
  }
  throw new Error('expected a ParameterError, nothing was thrown');
}

const resolve = (raw: Record<string, unknown>) => resolveParams('j', schema, raw);
const dates = fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });
/** Names that are not parameters of the schema (names inherited from Object.prototype: see PROTOTYPE_NAMES). */
const unknownNames = fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !Object.hasOwn(schema, k) && !['fireTime', 'run.id'].includes(k) && !PROTOTYPE_NAMES.has(k));

describe('parameter parsing (property-based)', () => {
  it('each kind reads back what its text form and its JSON form say', () => {
    // (-0 has no text form of its own: String(-0) is "0".)
    fc.assert(
      fc.property(fc.string(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)), dates, fc.boolean(), (s, i, n, d, b) => {
        const fromText = resolve({ s, i: String(i), n: String(n), d: d.toISOString(), b: String(b) });
        expect(fromText).toEqual({ s, i, n, d, b });
        expect(Object.is(fromText.n, n)).toBe(true);
        // What is stored (JSON) reads back to the same values.
        expect(paramsFromJson('j', schema, JSON.parse(JSON.stringify(paramsToJson(fromText))))).toEqual(fromText);
        // Typed values are taken as they are.
        expect(resolve({ s, i, n, d, b })).toEqual(fromText);
      }),
      propertyOptions(),
    );
  });

  it('integers are read with surrounding spaces and a plus sign', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.constantFrom('', ' ', '\t', '  '), fc.constantFrom('', '+'), (i, pad, sign) => {
        const text = `${pad}${i >= 0 ? sign : ''}${i}${pad}`;
        expect(resolve({ i: text }).i).toBe(i);
      }),
      propertyOptions(),
    );
  });

  it('a value that is not of the kind is refused, naming the parameter and the value', () => {
    const notInt = fc.string().filter((t) => !/^[+-]?\d+$/.test(t.trim()));
    const notNumber = fc.string().filter((t) => !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t.trim()));
    const notBoolean = fc.string().filter((t) => t !== 'true' && t !== 'false');
    const notDate = fc.string().filter((t) => Number.isNaN(new Date(t.trim()).getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(t.trim()));
    const cases = fc.oneof(
      notInt.map((v) => ['i', v, 'an integer'] as const),
      fc.constantFrom(1.5, -0.25, Infinity, NaN, true, null, [1], { x: 1 }).map((v) => ['i', v, 'an integer'] as const),
      notNumber.map((v) => ['n', v, 'a number'] as const),
      fc.constantFrom(Infinity, -Infinity, NaN, true, null, [1]).map((v) => ['n', v, 'a number'] as const),
      notBoolean.map((v) => ['b', v, 'true or false'] as const),
      fc.constantFrom(0, 1, null, 'TRUE', 'yes').map((v) => ['b', v, 'true or false'] as const),
      notDate.map((v) => ['d', v, 'an ISO-8601 date'] as const),
      fc.constantFrom(null, [1], { x: 1 }).map((v) => ['s', v, 'a string'] as const),
    );
    fc.assert(
      fc.property(cases, ([name, value, kind]) => {
        const err = refusal(() => resolve({ [name]: value }));
        expect(err.message).toBe(`job j: parameter ${name} must be ${kind}, got ${JSON.stringify(value)}`);
      }),
      propertyOptions(),
    );
  });

  it('a calendar date that does not exist is refused, not rolled over into the next month', () => {
    // new Date('2024-02-30') is March 1: without the check, a typo would run the job for another day.
    for (const text of ['2024-02-30', '2023-02-29', '1900-02-29', '2024-04-31', '2024-06-31T10:00:00Z', '2024-09-31 08:00']) {
      expect(refusal(() => resolve({ d: text })).message).toBe(`job j: parameter d must be an ISO-8601 date, got ${JSON.stringify(text)} (there is no such day)`);
    }
    expect(resolve({ d: '2024-02-29' }).d).toEqual(new Date('2024-02-29T00:00:00Z'));
    expect(resolve({ d: '2000-02-29T12:00:00Z' }).d).toEqual(new Date('2000-02-29T12:00:00Z'));
    // Every day past a month's last, in any year, is refused (the last day itself was read back above).
    const leap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    const lastDay = (year: number, month: number) => (month === 2 ? (leap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31);
    const pastMonthEnd = fc.record({ year: fc.integer({ min: 1, max: 9999 }), month: fc.integer({ min: 1, max: 12 }), extra: fc.integer({ min: 1, max: 3 }) })
      .map(({ year, month, extra }) => ({ year, month, day: lastDay(year, month) + extra }))
      .filter(({ day }) => day <= 31);
    fc.assert(
      fc.property(pastMonthEnd, ({ year, month, day }) => {
        const text = `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
        expect(() => resolve({ d: text }), text).toThrow(ParameterError);
      }),
      propertyOptions(),
    );
  });

  it('a date-time without an offset is UTC whatever the machine\'s time zone, as a date alone is', () => {
    const zone = process.env.TZ;
    try {
      for (const tz of ['UTC', 'Europe/Paris', 'America/Los_Angeles', 'Asia/Kolkata']) {
        process.env.TZ = tz;
        expect(resolve({ d: '2024-01-15T10:00' }).d, tz).toEqual(new Date('2024-01-15T10:00:00Z'));
        expect(resolve({ d: '2024-07-15 23:30:05.250' }).d, tz).toEqual(new Date('2024-07-15T23:30:05.250Z'));
        expect(resolve({ d: '2024-01-15' }).d, tz).toEqual(new Date('2024-01-15T00:00:00Z'));
        // An offset given is kept.
        expect(resolve({ d: '2024-01-15T10:00+02:00' }).d, tz).toEqual(new Date('2024-01-15T08:00:00Z'));
        expect(resolve({ d: '2024-01-15T10:00:00-0500' }).d, tz).toEqual(new Date('2024-01-15T15:00:00Z'));
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('a whole number beyond the safe integers, or a number beyond a double, is refused as out of range', () => {
    const beyond = fc.bigInt({ min: BigInt(Number.MAX_SAFE_INTEGER) + 1n, max: 10n ** 40n });
    const cases = fc.oneof(
      fc.tuple(beyond, fc.constantFrom('', '-', '+')).map(([v, sign]) => ['i', `${sign}${v}`] as const),
      fc.constantFrom(2 ** 53, -(2 ** 53), 1e300).map((v) => ['i', v] as const),
      fc.tuple(fc.integer({ min: 309, max: 5000 }), fc.constantFrom('', '-')).map(([e, sign]) => ['n', `${sign}1e${e}`] as const),
    );
    fc.assert(
      fc.property(cases, ([name, value]) => {
        const err = refusal(() => resolve({ [name]: value }));
        const range = name === 'i' ? `an integer parameter must be between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}` : 'a number parameter must be finite';
        expect(err.message).toContain(`job j: parameter ${name} is out of range: ${range}`);
        expect(err.message).toMatch(new RegExp(`, got ${JSON.stringify(value).replace(/[+]/g, '\\+')}$`));
      }),
      propertyOptions(),
    );
  });

  it('an unknown name is refused, naming it', () => {
    fc.assert(
      fc.property(unknownNames, fc.string(), (name, value) => {
        expect(refusal(() => resolve({ [name]: value })).message).toContain(`unknown parameter ${name}`);
      }),
      propertyOptions(),
    );
  });

  it('key=value words split at the first "=", keep the rest of the value as it is, and refuse words without a key', () => {
    const keys = fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !k.includes('=') && !PROTOTYPE_NAMES.has(k));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(keys, fc.string()), { selector: ([k]) => k, maxLength: 6 }), (pairs) => {
        expect(parseKeyValues(pairs.map(([k, v]) => `${k}=${v}`))).toEqual(Object.fromEntries(pairs));
      }),
      propertyOptions(),
    );
    fc.assert(
      fc.property(fc.string().filter((w) => w.indexOf('=') <= 0), (word) => {
        expect(refusal(() => parseKeyValues([word])).message).toBe(`parameter ${JSON.stringify(word)} is not of the form key=value`);
      }),
      propertyOptions(),
    );
    // A key given twice is refused, whatever the values: keeping either would hide the other.
    fc.assert(
      fc.property(keys, fc.string(), fc.string(), fc.array(fc.tuple(keys, fc.string()), { maxLength: 3 }), (key, a, b, others) => {
        const words = [...others.filter(([k]) => k !== key).map(([k, v]) => `${k}=${v}`), `${key}=${a}`, `${key}=${b}`];
        const unique = new Set(others.map(([k]) => k)).size === others.length;
        fc.pre(unique);
        expect(refusal(() => parseKeyValues(words)).message).toBe(`parameter ${key} is given twice (${key}=${a} and ${key}=${b})`);
      }),
      propertyOptions(),
    );
  });
});
