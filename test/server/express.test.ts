/**
 * The console and its API mounted in an Express app under /batch, as the README's Express recipe
 * (Running a node inside your service) shows: a real Express server on an ephemeral port, real
 * HTTP requests, on both backends. The API's POSTs keep their JSON bodies because the mount comes
 * before the app's express.json(); mounted after it, they would hang (shown here too); and
 * consoleApi.close() ends the event streams that would hold server.close().
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { backends } from '../support/backends.ts';

const OPERATOR = 'express-operator-secret-0123456789abcdef';
const VIEWER = 'express-viewer-secret-0123456789abcdef';
const tokens = [
  { name: 'ops', role: 'operator', secret: OPERATOR },
  { name: 'looker', role: 'viewer', secret: VIEWER },
] as const;

type ConsoleApi = ReturnType<typeof createHttpApi>;

/** The README's mount: the prefix off (Express strips it from req.url), /batch redirected to /batch/. */
function mountConsole(app: express.Express, consoleApi: ConsoleApi): void {
  app.use('/batch', (req, res) => {
    if (!req.originalUrl.startsWith('/batch/')) return void res.redirect(308, '/batch/'); // the console's links are relative
    consoleApi.routing(req, res); // req.url is what follows /batch: /api/... for the API, / for the console
  });
}

/** A service's own route that reads a JSON body, through the app's express.json(). */
function ownRoutes(app: express.Express): void {
  app.use(express.json());
  app.post('/orders', (req, res) => void res.status(201).json({ received: req.body as unknown }));
}

async function listen(app: express.Express): Promise<{ server: Server; base: string }> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closed = (server: Server) => new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done())));
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const json = { 'content-type': 'application/json' };

describe.each(backends())('the console and API mounted in Express ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('serves the API with tokens, the console and its assets, JSON POSTs beside express.json(), and closes cleanly', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('express'), jobs: [noop, count], logger: silentLogger });
    try {
      const consoleApi = createHttpApi(ns, { tokens: [...tokens], logger: silentLogger, mountPath: '/batch' });
      await consoleApi.ready();
      const app = express();
      mountConsole(app, consoleApi);
      ownRoutes(app);
      const { server, base } = await listen(app);
      try {
        // Secure by default: no token, no data.
        const anonymous = await fetch(`${base}/batch/api/executions`);
        expect(anonymous.status).toBe(401);
        expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="nightshift"');
        // With a token: the data.
        const done = await ns.run('noop');
        const listed = await fetch(`${base}/batch/api/executions`, { headers: bearer(VIEWER) });
        expect(listed.status).toBe(200);
        expect(await listed.json()).toEqual([expect.objectContaining({ id: done.id, jobName: 'noop', status: 'COMPLETED' })]);
        // The console's page at /batch/, its relative asset links resolving under /batch/assets/.
        const bare = await fetch(`${base}/batch`, { redirect: 'manual' });
        expect(bare.status).toBe(308);
        expect(bare.headers.get('location')).toBe('/batch/');
        const page = await fetch(`${base}/batch`); // followed
        expect(page.url).toBe(`${base}/batch/`);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
        const html = await page.text();
        const script = /<script type="module" src="(assets\/[^"]+)"/.exec(html)?.[1];
        expect(script).toBe('assets/app.js');
        const asset = await fetch(new URL(script!, page.url));
        expect(asset.status).toBe(200);
        expect(asset.headers.get('content-type')).toMatch(/javascript/);
        expect((await asset.text()).length).toBeGreaterThan(100);
        // JSON POSTs reach the API with their bodies: logging in (the console's form)...
        const login = await fetch(`${base}/batch/api/session`, { method: 'POST', headers: { ...bearer(OPERATOR), ...json }, body: '{}' });
        expect(login.status).toBe(200);
        const setCookie = login.headers.get('set-cookie')!;
        expect(setCookie).toMatch(/; Path=\/batch(;|$)/); // mountPath: the service's other routes never get it
        const cookie = setCookie.split(';')[0]!;
        expect(cookie).toMatch(/^nightshift_session=/);
        const session = await fetch(`${base}/batch/api/session`, { headers: { cookie } });
        expect(await session.json()).toMatchObject({ name: 'ops', role: 'operator', via: 'session' });
        // ...and submitting a job, its parameters read from the body.
        const submitted = await fetch(`${base}/batch/api/jobs/count/executions`, {
          method: 'POST',
          headers: { ...bearer(OPERATOR), ...json },
          body: JSON.stringify({ params: { items: 5, tag: 'from-express' } }),
        });
        expect(submitted.status).toBe(202);
        expect(await submitted.json()).toMatchObject({ jobName: 'count', parameters: expect.objectContaining({ items: 5, tag: 'from-express' }) });
        const refused = await fetch(`${base}/batch/api/jobs/count/executions`, {
          method: 'POST',
          headers: { ...bearer(OPERATOR), ...json },
          body: JSON.stringify({ params: { items: 'many' } }),
        });
        expect(refused.status).toBe(400);
        expect(await refused.json()).toEqual({ error: 'job count: parameter items must be an integer, got "many"' });
        // The app's own route, after the mount, still parses its JSON.
        const order = await fetch(`${base}/orders`, { method: 'POST', headers: json, body: '{"sku":"A-1"}' });
        expect(order.status).toBe(201);
        expect(await order.json()).toEqual({ received: { sku: 'A-1' } });
        // An unknown path under /batch is the API's 404, not Express's.
        const missing = await fetch(`${base}/batch/nothing`, { headers: bearer(VIEWER) });
        expect(missing.status).toBe(404);
        expect(await missing.json()).toEqual({ error: 'no route GET /nothing' });
        // The API's security headers, and Express's X-Powered-By (set before the mount) removed.
        expect(missing.headers.get('x-powered-by')).toBeNull();
        expect(missing.headers.get('x-frame-options')).toBe('DENY');

        // Close as the README does, with a console's event stream open: consoleApi.close() ends
        // the stream, so server.close() finds no busy connection and closes at once.
        const events = await fetch(`${base}/batch/api/events`, { headers: bearer(VIEWER) });
        expect(events.status).toBe(200);
        const reader = events.body!.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toContain('retry: 3000');
        const started = Date.now();
        await consoleApi.close();
        await closed(server);
        for (let r = await reader.read(); !r.done; r = await reader.read());
        expect(Date.now() - started).toBeLessThan(1000);
      } finally {
        server.closeAllConnections();
        if (server.listening) await closed(server);
      }
    } finally {
      await ns.close();
    }
  });

  it("closed the other way round, server.close() waits on a console's open event stream", async () => {
    const ns = await createNightshift({ db: backend.freshUrl('express-close'), jobs: [noop], logger: silentLogger });
    try {
      const consoleApi = createHttpApi(ns, { tokens: [...tokens], logger: silentLogger, mountPath: '/batch' });
      await consoleApi.ready();
      const app = express();
      mountConsole(app, consoleApi);
      const { server, base } = await listen(app);
      let serverClosed = false;
      try {
        const events = await fetch(`${base}/batch/api/events`, { headers: bearer(VIEWER) });
        const reader = events.body!.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toContain('retry: 3000');
        const serverClose = closed(server).then(() => (serverClosed = true));
        await new Promise((r) => setTimeout(r, 500));
        expect(serverClosed).toBe(false);
        await consoleApi.close(); // ends the stream: the connection is idle then, and closes at its keep-alive timeout
        for (let r = await reader.read(); !r.done; r = await reader.read());
        server.closeAllConnections();
        await serverClose;
      } finally {
        if (!serverClosed) {
          await consoleApi.close();
          server.closeAllConnections();
        }
      }
    } finally {
      await ns.close();
    }
  });

  it("mounted after express.json(), the API's JSON POSTs hang: their body was read already", async () => {
    const ns = await createNightshift({ db: backend.freshUrl('express-late'), jobs: [noop], logger: silentLogger });
    try {
      const consoleApi = createHttpApi(ns, { tokens: [...tokens], logger: silentLogger, mountPath: '/batch' });
      await consoleApi.ready();
      const app = express();
      ownRoutes(app);
      mountConsole(app, consoleApi);
      const { server, base } = await listen(app);
      try {
        // GETs have no body, so they still work.
        expect((await fetch(`${base}/batch/api/session`, { headers: bearer(OPERATOR) })).status).toBe(200);
        const login = fetch(`${base}/batch/api/session`, { method: 'POST', headers: { ...bearer(OPERATOR), ...json }, body: '{}', signal: AbortSignal.timeout(1500) });
        await expect(login).rejects.toThrow(/timeout|aborted/i);
      } finally {
        await consoleApi.close();
        server.closeAllConnections();
        await closed(server);
      }
    } finally {
      await ns.close();
    }
  });
});

describe("the README's Express recipe", () => {
  it('mounts as this test does, before express.json(), and closes the console first', () => {
    const readme = readFileSync(join(resolve(import.meta.dirname, '../..'), 'README.md'), 'utf8');
    const recipes = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes("from 'express'"));
    expect(recipes).toHaveLength(1);
    const recipe = recipes[0]!;
    const at = (line: string) => {
      const i = recipe.indexOf(line);
      expect(i, line).toBeGreaterThanOrEqual(0);
      return i;
    };
    at("logger, mountPath: '/batch' });");
    at('await consoleApi.ready();');
    const mount = at("app.use('/batch', (req, res) => {");
    at("if (!req.originalUrl.startsWith('/batch/')) return void res.redirect(308, '/batch/');");
    at('consoleApi.routing(req, res);');
    expect(mount).toBeLessThan(at('app.use(express.json());'));
    expect(at('await consoleApi.close();')).toBeLessThan(at('server.close('));
  });
});
