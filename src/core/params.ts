import { hash } from 'node:crypto';
import { parseIsoDate, whyNoDate } from './dates.ts';
import { ParameterError, UsageError, errorMessage } from './errors.ts';

/** The value types a job parameter can have. */
export type ParamKind = 'string' | 'int' | 'number' | 'date' | 'boolean';

/** The TypeScript type of each parameter kind's values. */
export type KindValue = {
  /** `p.string` */
  string: string;
  /** `p.int` */
  int: number;
  /** `p.number` */
  number: number;
  /** `p.date` */
  date: Date;
  /** `p.boolean` */
  boolean: boolean;
};

/** Options common to every parameter. */
export interface ParamOptions<T> {
  /** Used when the parameter is not given. A parameter with a default is never undefined. */
  default?: T;
  /** A parameter without default that must be given. */
  required?: boolean | undefined;
  /** Identifying parameters (the default) tell job instances apart; others do not. */
  identifying?: boolean | undefined;
  /** What the parameter means, shown by `nightshift jobs` and the API. */
  description?: string | undefined;
  /** Extra validation: return an error message, or undefined when the value is fine. */
  validate?: ((value: T) => string | undefined) | undefined;
}

/** A declared job parameter. `T` is the type the job sees. */
export interface ParamSpec<T> {
  /** How values are parsed and checked. */
  readonly kind: ParamKind;
  /** The value when none is given. */
  readonly default?: T;
  /** Whether a launch must give it. */
  readonly required: boolean;
  /** Whether it tells job instances apart. */
  readonly identifying: boolean;
  /** What the parameter means. */
  readonly description?: string;
  /** Extra validation (method syntax keeps specs of all types assignable to ParamSpec<unknown>). */
  validate?(value: NonNullable<T>): string | undefined;
}

/** A parameter's value type: optional unless it has a default or is required. */
export type Resolved<K extends ParamKind, O> = O extends
  | {
      /** Any default. */
      default: unknown;
    }
  | {
      /** Required. */
      required: true;
    }
  ? KindValue[K]
  : KindValue[K] | undefined;

function make<K extends ParamKind>(kind: K) {
  return <O extends ParamOptions<KindValue[K]>>(options?: O): ParamSpec<Resolved<K, O>> => ({
    kind,
    default: options?.default as Resolved<K, O> | undefined,
    required: options?.required ?? false,
    identifying: options?.identifying ?? true,
    description: options?.description,
    validate: options?.validate as ((value: NonNullable<Resolved<K, O>>) => string | undefined) | undefined,
  });
}

/**
 * Builders for job parameter declarations.
 *
 * @example
 * const params = { items: p.int({ default: 1000 }), tag: p.string({ default: 'x' }), delayMs: p.int({ default: 0, identifying: false }) };
 */
export const p = {
  /** A string parameter, taken as given. */
  string: make('string'),
  /** An integer parameter (`items=5000`); a value with a fraction or a non-number is refused. */
  int: make('int'),
  /** A number parameter (`ratio=0.25`). */
  number: make('number'),
  /** A date parameter: an ISO-8601 date or date-time (`day=2024-01-15`), a Date in callbacks. */
  date: make('date'),
  /** A boolean parameter: `true` or `false`. */
  boolean: make('boolean'),
};

/** A job's parameter declarations. */
export type ParamsSchema = Record<string, ParamSpec<unknown>>;

/** The parameter values a job sees, inferred from its schema. */
export type ParamValues<S extends ParamsSchema> = { readonly [K in keyof S]: S[K] extends ParamSpec<infer T> ? T : never };

/** Parameter values in their JSON form (dates as ISO strings), as stored and printed. */
export type JsonParams = Record<string, string | number | boolean>;

/**
 * Parameters every job accepts without declaring them: `fireTime`, set by the scheduler, and
 * `run.id`, set by the next-instance incrementer. Both identify the instance.
 */
export const IMPLICIT_PARAMS: Record<string, ParamSpec<unknown>> = {
  fireTime: { kind: 'date', required: false, identifying: true, description: 'scheduled fire time' },
  'run.id': { kind: 'int', required: false, identifying: true, description: 'next-instance counter' },
};

function specFor(schema: ParamsSchema, name: string): ParamSpec<unknown> | undefined {
  if (Object.hasOwn(schema, name)) return schema[name];
  return Object.hasOwn(IMPLICIT_PARAMS, name) ? IMPLICIT_PARAMS[name] : undefined;
}

const INT = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
function describe(kind: ParamKind): string {
  switch (kind) {
    case 'int': return 'an integer';
    case 'number': return 'a number';
    case 'date': return 'an ISO-8601 date';
    case 'boolean': return 'true or false';
    default: return 'a string';
  }
}

function badValue(job: string, name: string, kind: ParamKind, raw: unknown): ParameterError {
  const why = kind === 'date' && typeof raw === 'string' ? whyNoDate(raw) : '';
  return new ParameterError(`job ${job}: parameter ${name} must be ${describe(kind)}, got ${JSON.stringify(raw)}${why}`);
}

/** A whole number beyond the safe integers, or a number beyond a double's range. */
function outOfRange(job: string, name: string, kind: ParamKind, raw: unknown): ParameterError {
  const range = kind === 'int'
    ? `an integer parameter must be between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER} (Number.MAX_SAFE_INTEGER)`
    : `a number parameter must be finite, at most ${Number.MAX_VALUE} either side of 0`;
  return new ParameterError(`job ${job}: parameter ${name} is out of range: ${range}, got ${JSON.stringify(raw)}`);
}

/** Converts one raw value (a CLI string or a JSON value) to the parameter's type. */
function coerce(job: string, name: string, kind: ParamKind, raw: unknown): unknown {
  switch (kind) {
    case 'string':
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      break;
    case 'int': {
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw;
      if (typeof raw === 'string' && INT.test(raw.trim())) {
        const n = Number(raw.trim());
        if (Number.isSafeInteger(n)) return n;
        throw outOfRange(job, name, kind, raw);
      }
      if (typeof raw === 'number' && Number.isInteger(raw)) throw outOfRange(job, name, kind, raw);
      break;
    }
    case 'number': {
      if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
      if (typeof raw === 'string' && NUMBER.test(raw.trim())) {
        const n = Number(raw.trim());
        if (Number.isFinite(n)) return n;
        throw outOfRange(job, name, kind, raw);
      }
      break;
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      break;
    case 'date': {
      if (raw instanceof Date && !Number.isNaN(raw.getTime())) return raw;
      const d = typeof raw === 'string' ? parseIsoDate(raw) : undefined;
      if (d) return d;
      break;
    }
  }
  throw badValue(job, name, kind, raw);
}

/** Whether a declared default already has its parameter's type (a default is used as given, not parsed). */
function defaultFits(kind: ParamKind, value: unknown): boolean {
  switch (kind) {
    case 'string': return typeof value === 'string';
    case 'int': return typeof value === 'number' && Number.isSafeInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'boolean': return typeof value === 'boolean';
    case 'date': return value instanceof Date && !Number.isNaN(value.getTime());
    default: return false;
  }
}

function shown(value: unknown): string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : value.toISOString();
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * Checks every declared default against its parameter's kind and its own `validate`, when the
 * job is defined: a bad default would otherwise fail every launch that relies on it (and leave a
 * FAILED instance that could never complete). Throws a UsageError naming job, parameter and value.
 */
export function checkDefaults(job: string, schema: ParamsSchema): void {
  for (const [name, spec] of Object.entries(schema)) {
    if (spec.default === undefined) continue;
    const value: unknown = spec.default;
    if (!defaultFits(spec.kind, value)) {
      const what = spec.kind === 'date' ? 'a valid Date (e.g. new Date(\'2024-01-15\'))' : spec.kind === 'int' ? 'a whole number (a safe integer)' : describe(spec.kind);
      throw new UsageError(`job ${job}: parameter ${name}: default must be ${what}, got ${shown(value)}`);
    }
    if (spec.validate) {
      let problem: string | undefined;
      try {
        problem = spec.validate(value as never);
      } catch (err) {
        throw new UsageError(`job ${job}: parameter ${name}: validate failed on the default ${shown(value)}: ${errorMessage(err)}`, { cause: err });
      }
      if (problem) throw new UsageError(`job ${job}: parameter ${name}: default ${shown(value)} is refused by its validate: ${problem}`);
    }
  }
}

/**
 * Validates and types raw parameters against a job's schema, applying defaults. Unknown,
 * missing and mistyped parameters are rejected with an error naming the parameter; `partial`
 * leaves a missing required one out instead (a trigger's parameters, which a job's
 * `firingParams` completes).
 */
export function resolveParams(
  job: string,
  schema: ParamsSchema,
  raw: Record<string, unknown>,
  { partial = false }: { partial?: boolean } = {},
): Record<string, unknown> {
  if (raw === undefined) raw = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const got = raw === null ? 'null' : Array.isArray(raw) ? 'an array' : `${typeof raw} ${JSON.stringify(raw)}`;
    throw new ParameterError(`job ${job}: parameters must be an object of parameter names to values, got ${got}`);
  }
  // A null-prototype map: a parameter named __proto__ or constructor is a plain entry here.
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of Object.entries(raw)) {
    const spec = specFor(schema, name);
    if (!spec) {
      const known = Object.keys(schema);
      throw new ParameterError(
        `job ${job}: unknown parameter ${name}` + (known.length ? ` (known: ${known.join(', ')})` : ' (it takes no parameters)'),
      );
    }
    if (value === undefined) continue;
    out[name] = coerce(job, name, spec.kind, value);
  }
  for (const [name, spec] of Object.entries(schema)) {
    if (!Object.hasOwn(out, name) || out[name] === undefined) {
      if (spec.default !== undefined) out[name] = spec.default;
      else if (spec.required && !partial) throw new ParameterError(`job ${job}: missing required parameter ${name}`);
    }
    if (out[name] !== undefined && spec.validate) {
      const problem = spec.validate(out[name] as never);
      if (problem) throw new ParameterError(`job ${job}: parameter ${name}: ${problem}`);
    }
  }
  return out;
}

/**
 * The parameters given, without those whose value is undefined: an explicit undefined means not
 * given, also where parameters from two sources are laid over each other (so that it does not
 * hide the value under it).
 */
export function givenParams(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined));
}

/** The JSON form of resolved parameters: dates become ISO-8601 UTC strings with milliseconds. */
export function paramsToJson(values: Record<string, unknown>): JsonParams {
  const out: JsonParams = {};
  for (const key of Object.keys(values).sort()) {
    const v = values[key];
    if (v === undefined) continue;
    out[key] = v instanceof Date ? v.toISOString() : (v as string | number | boolean);
  }
  return out;
}

/** Restores typed values from their JSON form (as read back from the repository). */
export function paramsFromJson(job: string, schema: ParamsSchema, json: JsonParams): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of Object.entries(json)) {
    const spec = specFor(schema, name);
    out[name] = spec ? coerce(job, name, spec.kind, value) : value;
  }
  return out;
}

/**
 * The identifying subset of resolved parameters, in JSON form; `fireTime` among them unless
 * `fireTimeIdentifying` is false (a job whose firings are identified by parameters of its own).
 */
export function identifyingParams(schema: ParamsSchema, values: Record<string, unknown>, fireTimeIdentifying = true): JsonParams {
  const ident: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    const spec = specFor(schema, name);
    if (spec?.identifying !== false && (fireTimeIdentifying || name !== 'fireTime')) ident[name] = value;
  }
  return paramsToJson(ident);
}

/** A stable key for a job instance: a hash of the identifying parameters in canonical form. */
export function instanceKey(identifying: JsonParams): string {
  const canonical = JSON.stringify(Object.keys(identifying).sort().map((k) => [k, identifying[k]]));
  // One-shot hashing: several times cheaper than a Hash object per key (bulk submit makes one per item).
  return hash('sha256', canonical, 'hex').slice(0, 32);
}

/** Parses CLI words `key=value` into a raw parameter map; the job's schema types them later. */
export function parseKeyValues(words: readonly string[]): Record<string, string> {
  // A null-prototype map, so that `__proto__=x` is a parameter like any other (and is refused as unknown).
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new ParameterError(`parameter ${JSON.stringify(word)} is not of the form key=value`);
    const key = word.slice(0, eq);
    // Keeping the last of two would hide a typo or a pasted line; neither value is the one meant.
    if (Object.hasOwn(out, key)) throw new ParameterError(`parameter ${key} is given twice (${key}=${out[key]} and ${word})`);
    out[key] = word.slice(eq + 1);
  }
  return out;
}

/** A positive whole number given as text (an id, a limit), at most `max`, or a UsageError naming `what`. */
export function positiveInt(what: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  if (Number(raw) > max) throw new UsageError(`${what} must be at most ${max}, got ${raw}`);
  return Number(raw);
}
