/**
 * Hides the password of every URL in a text: `postgres://user:secret@host/db` becomes
 * `postgres://user:***@host/db`. Every message and log line that can hold a database URL goes
 * through it (CLI errors, the API's errors, logs). The password runs to the last `@` of the
 * word, so a password holding `@`, `/` or `:` is hidden whole (at worst, a bit more is hidden).
 */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s"]*):[^\s]*@/gi, '$1:***@');
}

/** How deep {@link redactValue} walks by structure before it looks at the rest as its JSON text. */
const MAX_DEPTH = 4;

/**
 * `value` with the URL passwords hidden wherever they would show once the value is serialised
 * (as pino serialises a log record's fields: own enumerable properties, `toJSON`). Copy on
 * write: what holds no URL with a password comes back as is (the same object), so a log record
 * without one costs a walk and no copy. What it looks into, and what a value that needs hiding
 * becomes:
 * - strings: the password of each URL in them hidden ({@link redactUrls});
 * - arrays and plain objects: a copy with their elements and own enumerable properties hidden;
 * - errors: a copy of the same class (so loggers still see an Error), its message, stack, cause,
 *   `errors` (AggregateError) and other own properties hidden;
 * - `URL` objects with a password: the text of the URL with the password hidden (what it
 *   serialises to);
 * - other objects (instances of a class): what JSON.stringify would write of them, that is the
 *   result of their `toJSON` if they have one, or else their own enumerable properties, as a
 *   plain object, when it needs hiding (a class instance holding a connection string becomes a
 *   plain object of its properties, the string hidden); as is otherwise. Dates, buffers and typed
 *   arrays are left alone (they serialise as a date or as numbers); maps, sets and the like
 *   serialise as `{}` and show nothing, so they are left alone too.
 * The walk by structure stops at {@link MAX_DEPTH} levels (it bounds the cost and cycles); an
 * object below that is looked at as its JSON text (cycles written `[Circular]`), and replaced by
 * the parse of that text with the passwords hidden if it holds one: a deep password never shows,
 * at the price of the object's class. An object that cannot be serialised there becomes
 * `'[Unserializable]'`.
 * What `%s` prints, a class's own `toString`, is looked at for a log call's interpolated values
 * only ({@link redactArgs}). Not covered: a function as an error's `cause` (VError style, which
 * pino's error serializer calls), and passwords in a URL's query string (`?password=`).
 */
export function redactValue(value: unknown): unknown {
  return redact(value, 0, false);
}

/**
 * {@link redactValue} at `depth`; `toJSON`: whether JSON.stringify would call the value's
 * `toJSON` (it would for a field or an array element; pino reads the merging object and bindings
 * by their own properties).
 */
function redact(value: unknown, depth: number, toJSON: boolean): unknown {
  if (typeof value === 'string') return value.includes('://') ? redactUrls(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) return redactDeep(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redact(value[i], depth + 1, true);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  if (value instanceof Error) return redactError(value, depth);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    if (value instanceof URL) return value.password === '' ? value : redactUrls(value.href);
    if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  }
  if (toJSON) {
    const method = (value as { toJSON?: unknown }).toJSON;
    if (typeof method === 'function') {
      const json: unknown = method.call(value);
      if (json !== value) {
        // JSON.stringify calls toJSON once: the result's own toJSON is not called.
        const r = redact(json, depth, false);
        return r === json ? value : r;
      }
    }
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = redact(v, depth + 1, true);
    if (r !== v) (out ??= { ...value })[k] = r;
  }
  return out ?? value;
}

/**
 * `value`, an object below the depth {@link redact} walks, as is if its JSON text (as pino would
 * write it, errors with their message, stack, cause and `errors`) holds no URL with a password;
 * else the parse of that text with the passwords hidden.
 */
function redactDeep(value: object): unknown {
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  let changed = false;
  const holders: unknown[] = [];
  const originals: unknown[] = [];
  let text: string | undefined;
  try {
    text = JSON.stringify(value, function (this: unknown, _key: string, v: unknown): unknown {
      if (typeof v === 'string') {
        if (!v.includes('://')) return v;
        const r = redactUrls(v);
        if (r !== v) changed = true;
        return r;
      }
      if (typeof v === 'bigint') return v.toString();
      if (typeof v !== 'object' || v === null) return v;
      while (holders.length > 0 && holders.at(-1) !== this) {
        holders.pop();
        originals.pop();
      }
      if (originals.includes(v)) return '[Circular]';
      const r = v instanceof Error ? errorFields(v) : v;
      holders.push(r);
      originals.push(v);
      return r;
    });
  } catch {
    return '[Unserializable]';
  }
  return changed && text !== undefined ? JSON.parse(text) : value;
}

/** What pino's error serializer writes of `err`, as a plain object: its own enumerable properties, message, stack, cause and errors. */
function errorFields(err: Error): Record<string, unknown> {
  const { message, stack, cause, errors } = err as Error & { cause?: unknown; errors?: unknown };
  return { ...err, message, stack, cause, errors };
}

function redactError(err: Error, depth: number): Error {
  let changed = false;
  const descriptors: PropertyDescriptorMap = Object.getOwnPropertyDescriptors(err);
  // The stack may be an accessor, own or inherited, depending on the engine: read it as a value.
  const keys = new Set<string | symbol>([...Reflect.ownKeys(descriptors), 'message', 'stack']);
  for (const key of keys) {
    const d = descriptors[key] as PropertyDescriptor | undefined;
    const v: unknown = d && 'value' in d ? d.value : Reflect.get(err, key);
    const r = redact(v, depth + 1, true);
    if (r === v) continue;
    descriptors[key] = { value: r, writable: true, enumerable: d?.enumerable ?? false, configurable: true };
    changed = true;
  }
  return changed ? (Object.create(Object.getPrototypeOf(err) as object, descriptors) as Error) : err;
}

/**
 * The arguments of a log call with {@link redactValue} applied to each: the same array when none
 * changed. The arguments after the first (the message, values for `%s`, `%o`, `%j`) are hidden as
 * JSON.stringify would write them (their `toJSON` counts); one that is an object with a `toString`
 * of its own (what `%s` prints) that shows a URL password becomes that text, password hidden.
 */
export function redactArgs<T extends unknown[]>(args: T): T {
  let out: T | undefined;
  for (let i = 0; i < args.length; i++) {
    const v = i === 0 ? redact(args[i], 0, false) : redactFormatArg(args[i]);
    if (v !== args[i]) (out ??= args.slice() as T)[i] = v;
  }
  return out ?? args;
}

function redactFormatArg(value: unknown): unknown {
  const r = redact(value, 1, true);
  if (r !== value || typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Error) return r;
  const { toString } = value as { toString?: unknown };
  if (typeof toString !== 'function' || toString === Object.prototype.toString) return value;
  let text: string;
  try {
    text = String(value);
  } catch {
    return value; // pino's %s throws the same; %o and %j do not call toString
  }
  const hidden = redactValue(text);
  return hidden === text ? value : hidden;
}
