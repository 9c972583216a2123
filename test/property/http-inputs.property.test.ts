/**
 * Property tests of the HTTP API's inputs: any query of the executions list (filters, limit,
 * cursor, steps, unknown names), any execution id, and any launch body (parameters, node, key)
 * is answered without a server error; bad input gets a 400 whose error names the field at fault.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { backends } from '../support/backends.ts';
import { PROTOTYPE_NAMES, propertyOptions } from '../support/property.ts';

const [sqlite] = backends().filter((b) => b.name === 'sqlite');
const SECRET = 'alice-operator-secret';
let ns: Nightshift;
let app: ReturnType<typeof createHttpApi>;

beforeAll(async () => {
  ns = await createNightshift({ db: sqlite.freshUrl('http-props'), jobs: [count, noop], logger: silentLogger });
  app = createHttpApi(ns, { tokens: [{ name: 'alice', role: 'operator', secret: SECRET }] });
  // Some executions to list and page through.
  for (let i = 0; i < 3; i++) await ns.run('count', { items: 3, chunk: 2, tag: `p${i}` });
});
afterAll(async () => {
  await app?.close();
  await ns?.close();
  await sqlite.cleanup();
});

async function send(method: 'GET' | 'POST', url: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${SECRET}` };
  if (method === 'POST') headers['content-type'] = 'application/json';
  const r = await app.inject({ method, url, headers, payload: body === undefined ? undefined : JSON.stringify(body) });
  const json = r.headers['content-type']?.toString().startsWith('application/json');
  return { status: r.statusCode, body: (json ? r.json() : r.body) as { error?: unknown } };
}

/** A word of the error message is the field's name. */
const names = (error: unknown, field: string) =>
  typeof error === 'string' && new RegExp(`(^|[^\\w.])${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^\\w]|$)`).test(error);

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', ' ', '0', '-1', '1', '1000', '1001', '99999999999999999999', '1e3', '1.5', 'true', 'NaN', 'null',
    '2024-01-15T10:00:00Z', '2024-13-45', 'COMPLETED', 'FAILED,COMPLETED', 'DONE', ',', 'x'.repeat(300)),
);
const KNOWN = ['job', 'status', 'node', 'from', 'to', 'q', 'cursor', 'limit', 'steps'];
const unknownKey = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,11}$/).filter((k) => !KNOWN.includes(k) && !PROTOTYPE_NAMES.has(k));
const queries = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...KNOWN), unknownKey), text), { maxLength: 5 });

const jsonValues = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }));
const PARAMS = ['items', 'chunk', 'tag', 'delayMs', 'failAt'];
const paramName = fc.oneof(fc.constantFrom(...PARAMS), fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9]{0,9}$/).filter((k) => !PROTOTYPE_NAMES.has(k)));
const bodies = fc.record({
  params: fc.oneof(fc.dictionary(paramName, fc.oneof(jsonValues, fc.integer({ min: 0, max: 50 }).map(String)), { maxKeys: 4 }), jsonValues),
  node: fc.oneof(fc.string({ maxLength: 10 }), jsonValues),
  key: fc.oneof(fc.string({ maxLength: 10 }), jsonValues),
}, { requiredKeys: [] });

describe('HTTP API inputs (property-based)', () => {
  it('the executions list answers any query with 200, or with a 400 naming a field it was given', async () => {
    await fc.assert(
      fc.asyncProperty(queries, async (pairs) => {
        const url = `/api/executions?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
        const r = await send('GET', url);
        expect([200, 400], `${url}: ${JSON.stringify(r.body)}`).toContain(r.status);
        if (r.status === 400) {
          expect(pairs.some(([k]) => names(r.body.error, k)), `${url}: the error names none of the fields: ${JSON.stringify(r.body)}`).toBe(true);
        }
      }),
      propertyOptions(),
    );
  });

  it('a bad value of any one filter is refused with a 400 naming that filter', async () => {
    const STATUSES = ['STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FAILED', 'COMPLETED', 'ABANDONED', 'UNKNOWN'];
    const notInt = fc.string({ minLength: 1, maxLength: 8 }).filter((t) => !/^\s*[+-]?\d+\s*$/.test(t));
    const bad = fc.oneof(
      fc.oneof(fc.integer({ min: 1001, max: 1e9 }), fc.integer({ min: -1e6, max: 0 })).map((n) => ['limit', String(n)] as const),
      notInt.map((t) => ['limit', t] as const),
      fc.integer({ min: -1e6, max: 0 }).map((n) => ['cursor', String(n)] as const),
      notInt.map((t) => ['cursor', t] as const),
      fc.stringMatching(/^[A-Z]{1,10}$/).filter((t) => !STATUSES.includes(t)).map((t) => ['status', t] as const),
      fc.stringMatching(/^[A-Z]{1,10}$/).filter((t) => !STATUSES.includes(t)).map((t) => ['status', `COMPLETED,${t}`] as const),
      fc.constantFrom('yesterday', '2024-13-45T00:00:00Z', '15/01/2024', 'now').chain((t) => fc.constantFrom(['from', t] as const, ['to', t] as const)),
      fc.string({ maxLength: 6 }).filter((t) => !['0', '1', 'true', 'false'].includes(t)).map((t) => ['steps', t] as const),
      fc.integer({ min: 201, max: 400 }).map((n) => ['q', 'q'.repeat(n)] as const),
      fc.integer({ min: 129, max: 300 }).map((n) => ['job', 'j'.repeat(n)] as const),
    );
    await fc.assert(
      fc.asyncProperty(bad, async ([field, value]) => {
        const url = `/api/executions?${field}=${encodeURIComponent(value)}`;
        const r = await send('GET', url);
        expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(400);
        expect(names(r.body.error, field), `${url}: ${JSON.stringify(r.body)}`).toBe(true);
      }),
      propertyOptions(),
    );
  });

  it('an execution id is answered with 200, 404, or a 400 naming the id', async () => {
    await fc.assert(
      fc.asyncProperty(text.filter((t) => t !== ''), async (id) => {
        const r = await send('GET', `/api/executions/${encodeURIComponent(id)}`);
        expect([200, 400, 404], `${id}: ${JSON.stringify(r.body)}`).toContain(r.status);
        if (r.status === 400) expect(r.body.error, id).toMatch(/execution id/);
      }),
      propertyOptions(),
    );
  });

  it('a launch answers any body with 202 or 409, or with a 400 naming the field at fault', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const r = await send('POST', '/api/jobs/count/executions', body);
        const what = `${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`;
        expect([202, 400, 409], what).toContain(r.status);
        if (r.status === 400) {
          const params = body.params !== null && typeof body.params === 'object' && !Array.isArray(body.params) ? Object.keys(body.params) : [];
          const fields = ['params', 'node', 'key', 'body', ...params];
          expect(fields.some((f) => names(r.body.error, f)), `${what}: the error names none of ${fields.join(', ')}`).toBe(true);
        }
      }),
      propertyOptions(),
    );
  });
});
