import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';

/**
 * The web console: one page served at `/`, whose script is a set of ES modules
 * under ./assets, with no build step. The view library (Preact with htm templates) and the chart
 * library (uPlot) are runtime dependencies, read from their packages at start-up and served from
 * `/assets/` like the console's own files: no CDN, and no inline script or style (the
 * Content-Security-Policy allows neither). The page routes by its URL's hash (`#/executions/12`),
 * reads the API with the session cookie that its login form obtains (POST /api/session), and
 * refreshes what it shows when the event stream (/api/events) says something changed.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Nightshift</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="nightshift-session" content="SESSION">
<link rel="icon" href="favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="assets/uplot.css">
<link rel="stylesheet" href="assets/console.css">
<script type="module" src="assets/app.js"></script>
</head>
<body>
<div id="app"><p class="boot">Loading the Nightshift console…</p></div>
<noscript>The Nightshift console needs JavaScript. The API is at /api (see /api/openapi.json).</noscript>
</body>
</html>
`;

/** A static file of the console. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const requireFrom = createRequire(import.meta.url);

/** A file of an installed package, found from its resolved entry point (`entry`) and a path relative to it. */
const fromPackage = (entry: string, relative: string) => readFileSync(join(dirname(requireFrom.resolve(entry)), relative));

/**
 * The libraries, under the names the console's modules import them by. Preact's hooks import
 * `preact` by its bare name, which a browser cannot resolve without an import map (an inline
 * script): that import is rewritten to the served file.
 */
function libraries(): [string, Asset][] {
  const js = TYPES['.js'];
  const hooks = fromPackage('preact/hooks', 'hooks.mjs').toString('utf8').replace(/from\s*(["'])preact\1/g, 'from"./preact.js"');
  if (/from\s*["']preact["']/.test(hooks)) throw new Error('preact/hooks: could not rewrite its import of preact');
  return [
    ['preact.js', { type: js, body: fromPackage('preact', 'preact.mjs') }],
    ['preact-hooks.js', { type: js, body: Buffer.from(hooks) }],
    ['htm.js', { type: js, body: fromPackage('htm', 'htm.mjs') }],
    ['uplot.js', { type: js, body: fromPackage('uplot', 'uPlot.esm.js') }],
    ['uplot.css', { type: TYPES['.css'], body: fromPackage('uplot', 'uPlot.min.css') }],
  ];
}

/** The console's own files: every script, style and image in ./assets. */
function ownFiles(): [string, Asset][] {
  const dir = new URL('./assets/', import.meta.url);
  return readdirSync(dir)
    .filter((f) => TYPES[extname(f)])
    .map((f) => [f, { type: TYPES[extname(f)], body: readFileSync(new URL(f, dir)) }]);
}

/** The console's files, by the name they are served under (`/assets/NAME`, and the icon). */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([...libraries(), ...ownFiles()]);
