/**
 * For the console's browser tests: a real `nightshift serve` process with API tokens, real
 * `nightshift node` processes, Debian's Chromium (driven by playwright-core; never downloaded),
 * and a client of the API for setting things up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { builtCliEnv } from './built-cli.ts';

// As in node-procs.ts (not imported from there: that module needs vitest's runner).
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'bin/nightshift.js');
const CONFIG = 'examples/nightshift.config.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const SHOTS = join(ROOT, 'test-output/console');

export const OPERATOR = { name: 'olga', secret: 'olga-operator-secret-0123' };
export const VIEWER = { name: 'victor', secret: 'victor-viewer-secret-0123' };
export const TOKENS = `${OPERATOR.name}:operator:${OPERATOR.secret},${VIEWER.name}:viewer:${VIEWER.secret}`;

export interface Server {
  readonly base: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `nightshift serve --port 0` with the test tokens (and the example jobs, or `config`'s); resolves once it listens. */
export async function startServe(db: string, timeoutMs = 45_000, config = CONFIG): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--db', db, '--config', config], {
    cwd: ROOT,
    env: { ...process.env, ...builtCliEnv(), NIGHTSHIFT_API_TOKENS: TOKENS, NIGHTSHIFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not listen within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const on = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code}:\n${out}`));
    });
  });
  return {
    base,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A request to the API with a token, as a script would make it. */
export async function call<T = unknown>(base: string, secret: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: (text ? JSON.parse(text) : null) as T };
}

/** Logs in through the login page. */
export async function logIn(page: Page, base: string, secret: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.locator('#token').fill(secret);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#who').waitFor({ timeout: 10_000 });
}

/** Saves a screenshot of the page as it is, at a desktop and at a phone width. */
export async function shoot(page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  const size = page.viewportSize();
  for (const [label, width, height] of [['desktop', 1280, 800], ['phone', 390, 844]] as const) {
    await page.setViewportSize({ width, height });
    // Let charts and layout follow the new width.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: join(SHOTS, `${name}-${label}.png`), fullPage });
  }
  if (size) await page.setViewportSize(size);
}
