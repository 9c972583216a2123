/**
 * The URL passwords a log line could show, beyond strings in plain objects: URL objects, instances
 * of a class (own properties and toJSON), values nested deeper than the structural walk, cause
 * chains and AggregateError, `%s` values, child bindings and `msgPrefix`. Each through Nightshift's
 * own logger (createLogger) and through its view of a user's pino logger (redactingLogger), both
 * writing real pino lines to memory; what the lines hold is what is checked.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, redactingLogger } from '../../src/core/logger.ts';
import { redactArgs, redactValue } from '../../src/core/redact.ts';

const SECRET = 'Hunter2-db-Pa55';
const LEAKY_URL = `postgres://loader:${SECRET}@db.example.com:5432/warehouse`;
const HIDDEN_URL = 'postgres://loader:***@db.example.com:5432/warehouse';

/** Lines written to memory, parsed on demand. */
function sink() {
  const lines: string[] = [];
  const stream = { write: (line: string) => void lines.push(line) };
  return { stream, lines, text: () => lines.join(''), last: () => JSON.parse(lines.at(-1)!) as Record<string, unknown> };
}

const loggers = [
  { name: 'Nightshift\'s own logger', make: (s: ReturnType<typeof sink>) => createLogger({ level: 'info', destination: s.stream }) },
  { name: 'a user\'s logger through redactingLogger', make: (s: ReturnType<typeof sink>) => redactingLogger(pino({ level: 'info' }, s.stream)) },
];

/** A user's class holding a connection string in an own field. */
class DbConfig {
  constructor(readonly url: string, readonly pool = 4) {}
  describe(): string { return `pool of ${this.pool}`; }
}

/** A user's class whose JSON form carries a private connection string. */
class Connection {
  readonly #url: string;
  constructor(url: string) { this.#url = url; }
  toJSON() { return { kind: 'connection', url: this.#url }; }
}

/** A user's class that describes itself (what `%s` prints) with a private connection string. */
class Pool {
  readonly #url: string;
  constructor(url: string) { this.#url = url; }
  toString(): string { return `pool on ${this.#url}`; }
}

describe.each(loggers)('$name', ({ make }) => {
  it('hides the password of a URL object, as a field, nested, or a %s value', () => {
    const s = sink();
    const log = make(s);
    log.info({ db: new URL(LEAKY_URL), nested: { urls: [new URL(LEAKY_URL)] } }, 'connecting');
    expect(s.last()).toMatchObject({ db: HIDDEN_URL, nested: { urls: [HIDDEN_URL] }, msg: 'connecting' });
    log.info('connecting to %s', new URL(LEAKY_URL));
    expect(s.last()).toMatchObject({ msg: `connecting to ${HIDDEN_URL}` });
    log.info({ n: 1 }, 'connecting to %s with %j', new URL(LEAKY_URL), { db: new URL(LEAKY_URL) });
    expect(s.last()).toMatchObject({ n: 1, msg: `connecting to ${HIDDEN_URL} with {"db":"${HIDDEN_URL}"}` });
    expect(s.text()).not.toContain(SECRET);
  });

  it('hides the password in a class instance, by its own properties or its toJSON', () => {
    const s = sink();
    const log = make(s);
    log.info({ config: new DbConfig(LEAKY_URL), conn: new Connection(LEAKY_URL) }, 'configured');
    expect(s.last()).toMatchObject({ config: { url: HIDDEN_URL, pool: 4 }, conn: { kind: 'connection', url: HIDDEN_URL } });
    log.info('with %o', new DbConfig(LEAKY_URL));
    expect(s.last()).toMatchObject({ msg: `with {"url":"${HIDDEN_URL}","pool":4}` });
    // What %s prints is the instance's toString, here from a private field.
    log.info('using %s', new Pool(LEAKY_URL));
    expect(s.last()).toMatchObject({ msg: `using pool on ${HIDDEN_URL}` });
    expect(s.text()).not.toContain(SECRET);
  });

  it('hides a password nested deeper than the walk, and in a cycle there', () => {
    const s = sink();
    const log = make(s);
    const deep = { a: { b: { c: { d: { e: { f: { g: LEAKY_URL, config: new DbConfig(LEAKY_URL) } } } } } } };
    const cyclic: Record<string, unknown> = { url: LEAKY_URL };
    cyclic.self = cyclic;
    log.info({ deep, cyclic }, 'deep');
    const line = s.last() as { deep: typeof deep; cyclic: Record<string, unknown> };
    expect(line.deep.a.b.c.d.e.f).toEqual({ g: HIDDEN_URL, config: { url: HIDDEN_URL, pool: 4 } });
    expect(line.cyclic.url).toBe(HIDDEN_URL);
    expect(s.text()).not.toContain(SECRET);
  });

  it('hides the password along a long cause chain and in an AggregateError\'s errors', () => {
    const s = sink();
    const log = make(s);
    let err = new Error(`cannot reach ${LEAKY_URL}`);
    for (let i = 0; i < 8; i++) err = new Error(`level ${i}`, { cause: err });
    log.error({ err }, 'failed');
    const chained = s.last() as { err: { message: string; stack: string } };
    expect(chained.err.message).toContain(`cannot reach ${HIDDEN_URL}`);
    expect(chained.err.stack).toContain(`cannot reach ${HIDDEN_URL}`);
    const aggregate = new AggregateError([new Error(`first ${LEAKY_URL}`), new TypeError('second', { cause: new Error(LEAKY_URL) })], 'all failed');
    log.error(aggregate);
    const agg = s.last() as { err: { aggregateErrors: { message: string }[] } };
    expect(agg.err.aggregateErrors.map((e) => e.message)).toEqual([`first ${HIDDEN_URL}`, `second: ${HIDDEN_URL}`]);
    expect(s.text()).not.toContain(SECRET);
  });

  it('hides the password in a child\'s bindings and msgPrefix, and its children\'s', () => {
    const s = sink();
    const log = make(s);
    const child = log.child({ db: new URL(LEAKY_URL), config: new DbConfig(LEAKY_URL) }, { msgPrefix: `[${LEAKY_URL}] ` });
    child.info('ready');
    expect(s.last()).toMatchObject({ db: HIDDEN_URL, config: { url: HIDDEN_URL }, msg: `[${HIDDEN_URL}] ready` });
    child.child({ step: 'load' }, { msgPrefix: `${LEAKY_URL} ` }).warn({ n: 2 }, 'go');
    expect(s.last()).toMatchObject({ db: HIDDEN_URL, step: 'load', n: 2, msg: `[${HIDDEN_URL}] ${HIDDEN_URL} go` });
    expect(s.text()).not.toContain(SECRET);
  });
});

describe('redactValue', () => {
  it('copies nothing when there is nothing to hide, whatever the objects and however deep', () => {
    const cyclic: Record<string, unknown> = { url: 'postgres://loader@db.example.com/warehouse' };
    cyclic.self = cyclic;
    const record = {
      config: new DbConfig('postgres://loader@db.example.com/warehouse'), conn: new Connection('sqlite:///tmp/x.db'),
      url: new URL('postgres://loader@db.example.com/warehouse'), at: new Date(), buf: Buffer.from(LEAKY_URL), bytes: new Uint8Array(4),
      map: new Map([['db', LEAKY_URL]]), set: new Set([LEAKY_URL]), re: /x/, cyclic,
      deep: { a: { b: { c: { d: { e: { f: ['postgres://h/db'] } } } } } },
    };
    expect(redactValue(record)).toBe(record);
    const args: unknown[] = ['%s %o', new URL('http://example.com/'), record];
    expect(redactArgs(args)).toBe(args);
  });

  it('leaves a class instance that needs hiding as a plain object of its own enumerable properties', () => {
    const hidden = redactValue({ config: new DbConfig(LEAKY_URL) }) as { config: object };
    expect(hidden.config).toEqual({ url: HIDDEN_URL, pool: 4 });
    expect(Object.getPrototypeOf(hidden.config)).toBe(Object.prototype);
  });
});
