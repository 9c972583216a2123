/**
 * Hides the password of every URL in a text: `postgres://user:secret@host/db` becomes
 * `postgres://user:***@host/db`. Every message and log line that can hold a database URL goes
 * through it (CLI errors, the API's errors, logs). The password runs to the last `@` of the
 * word, so a password holding `@`, `/` or `:` is hidden whole (at worst, a bit more is hidden).
 */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s"]*):[^\s]*@/gi, '$1:***@');
}

/**
 * `value` with the URL passwords of its strings hidden, looking into plain objects, arrays and
 * errors a few levels deep. Copy on write: what holds no URL with a password comes back as is
 * (the same object), so a log record without one costs a walk and no copy. An error that needs
 * hiding comes back as a copy of the same class (so loggers still see an Error), its message,
 * stack, cause and other own properties hidden. Other objects (dates, buffers, class instances)
 * are left alone.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.includes('://') ? redactUrls(value) : value;
  if (depth > 4 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redactValue(value[i], depth + 1);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  if (value instanceof Error) return redactError(value, depth);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = redactValue(v, depth + 1);
    if (r !== v) (out ??= { ...value })[k] = r;
  }
  return out ?? value;
}

function redactError(err: Error, depth: number): Error {
  let changed = false;
  const descriptors: PropertyDescriptorMap = Object.getOwnPropertyDescriptors(err);
  // The stack may be an accessor, own or inherited, depending on the engine: read it as a value.
  const keys = new Set<string | symbol>([...Reflect.ownKeys(descriptors), 'message', 'stack']);
  for (const key of keys) {
    const d = descriptors[key] as PropertyDescriptor | undefined;
    const v: unknown = d && 'value' in d ? d.value : Reflect.get(err, key);
    const r = redactValue(v, depth + 1);
    if (r === v) continue;
    descriptors[key] = { value: r, writable: true, enumerable: d?.enumerable ?? false, configurable: true };
    changed = true;
  }
  return changed ? (Object.create(Object.getPrototypeOf(err) as object, descriptors) as Error) : err;
}

/** The arguments of a log call with {@link redactValue} applied to each: the same array when none changed. */
export function redactArgs<T extends unknown[]>(args: T): T {
  let out: T | undefined;
  for (let i = 0; i < args.length; i++) {
    const v = redactValue(args[i]);
    if (v !== args[i]) (out ??= args.slice() as T)[i] = v;
  }
  return out ?? args;
}
