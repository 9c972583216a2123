import { readFileSync } from 'node:fs';

/**
 * The web dashboard (SPEC section 6): one page, no build step, served at `/` by the HTTP API.
 * Its script and style are files under ./assets (the Content-Security-Policy allows no inline
 * script or style); the script asks the API again two seconds after each refresh: executions
 * with the live progress of running steps, failures with their reasons, nodes and schedules.
 * When the API answers 401 it shows a login form that exchanges an API token for a session
 * cookie (POST /api/session).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Nightshift</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="assets/dashboard.css">
<script src="assets/dashboard.js" defer></script>
</head>
<body>
<header><h1>Nightshift</h1><span id="who"></span><button id="logout" type="button" hidden>Log out</button></header>
<section id="login" hidden>
<form id="login-form">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
<div id="login-error" role="alert"></div>
</form>
</section>
<main id="main">
<div id="updated">loading…</div>
<h2>Executions</h2>
<table id="executions"><thead><tr><th>id</th><th>job</th><th>status</th><th>node</th><th>started</th><th>ended</th><th>progress</th></tr></thead><tbody></tbody></table>
<h2>Failures</h2>
<table id="failures"><thead><tr><th>id</th><th>job</th><th>ended</th><th>reason</th></tr></thead><tbody></tbody></table>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>name</th><th>status</th><th>last heartbeat</th><th>running</th><th>jobs</th></tr></thead><tbody></tbody></table>
<h2>Schedules</h2>
<table id="schedules"><thead><tr><th>name</th><th>job</th><th>schedule</th><th>state</th><th>next fire time</th><th>last execution</th></tr></thead><tbody></tbody></table>
</main>
</body>
</html>
`;

/** A static file of the console. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const asset = (file: string, type: string): Asset => ({ type, body: readFileSync(new URL(`./assets/${file}`, import.meta.url)) });

/** The console's files, by the name they are served under (`/assets/NAME`, and the icon). */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['dashboard.js', asset('dashboard.js', 'text/javascript; charset=utf-8')],
  ['dashboard.css', asset('dashboard.css', 'text/css; charset=utf-8')],
  ['favicon.svg', asset('favicon.svg', 'image/svg+xml')],
]);
