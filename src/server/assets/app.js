// The console's entry point: who is logged in (or the login page), the navigation, the page of
// the URL's hash, and the live event stream.
import { render } from './preact.js';
import { useEffect, useRef, useState } from './preact-hooks.js';
import { Audit } from './audit.js';
import { Notice } from './components.js';
import { ExecutionDetail, ExecutionList } from './executions.js';
import { JobDetail, JobList } from './jobs.js';
import { api, connectLive, disconnectLive, html, onUnauthorized, parseHash, useLoad } from './lib.js';
import { Nodes } from './nodes.js';
import { Overview } from './overview.js';
import { ScheduleDetail, Schedules } from './schedules.js';

const NAV = [
  ['', 'Overview'],
  ['executions', 'Executions'],
  ['jobs', 'Jobs'],
  ['schedules', 'Schedules'],
  ['nodes', 'Nodes'],
  ['audit', 'Audit'],
];

function Login({ onLogin }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { data } = await api('api/session', { method: 'POST', token: token.trim() });
      setToken('');
      onLogin(data);
    } catch (err) {
      setError(err.status === 401 ? new Error('This token is not valid.') : err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login" id="main">
    <form id="login-form" class="card" onSubmit=${submit}>
      <h1><img src="favicon.ico" alt="" width="32" height="32" /> Nightshift</h1>
      <p>Log in with an API token. It is exchanged for a session cookie.</p>
      <label for="token">API token</label>
      <input id="token" ref=${input} name="token" type="password" autocomplete="current-password" required aria-describedby="token-hint" value=${token} onInput=${(ev) => setToken(ev.currentTarget.value)} />
      <div class="hint" id="token-hint">a token configured for this server (<code>NIGHTSHIFT_API_TOKENS</code> or <code>--tokens-file</code>)</div>
      <${Notice} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
    </form>
  </main>`;
}

const LIVE_TEXT = { live: 'live', connecting: 'connecting…', closed: 'offline', unavailable: 'database unavailable' };

function Shell({ session, onLogout }) {
  const [hash, setHash] = useState(location.hash);
  const [live, setLive] = useState('connecting');
  const [jobs] = useLoad(async () => (await api('api/jobs')).data, []);
  const main = useRef(null);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    connectLive(setLive);
    return () => {
      removeEventListener('hashchange', on);
      disconnectLive();
    };
  }, []);
  const { parts, query } = parseHash(hash);
  const section = parts[0] || '';
  useEffect(() => {
    // A new page: move focus to its heading region, for keyboard and screen reader users.
    if (main.current && document.activeElement === document.body) main.current.focus({ preventScroll: true });
    scrollTo(0, 0);
  }, [parts.join('/')]);
  let page;
  if (section === '') page = html`<${Overview} />`;
  else if (section === 'executions' && parts[1]) page = html`<${ExecutionDetail} id=${parts[1]} session=${session} key=${parts[1]} />`;
  else if (section === 'executions') page = html`<${ExecutionList} query=${query} jobs=${jobs.data} />`;
  else if (section === 'jobs' && parts[1]) page = html`<${JobDetail} name=${parts[1]} session=${session} jobs=${jobs.data} key=${parts[1]} />`;
  else if (section === 'jobs') page = jobs.data ? html`<${JobList} jobs=${jobs.data} />` : html`<${Notice} error=${jobs.error} />`;
  else if (section === 'schedules' && parts[1]) page = html`<${ScheduleDetail} name=${parts[1]} query=${query} session=${session} key=${parts[1]} />`;
  else if (section === 'schedules') page = html`<${Schedules} session=${session} />`;
  else if (section === 'nodes') page = html`<${Nodes} session=${session} />`;
  else if (section === 'audit') page = html`<${Audit} query=${query} key=${query.toString()} />`;
  else page = html`<h1>Not found</h1><p>There is no page ${'#/' + parts.join('/')}. <a href="#/">Go to the overview</a>.</p>`;
  return html`<a class="skip" href="#main" onClick=${(ev) => (ev.preventDefault(), main.current.focus())}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/"><img src="favicon.ico" alt="" width="24" height="24" /> Nightshift</a>
      <nav aria-label="Main"><ul>${NAV.map(([path, label]) => html`<li><a href=${'#/' + path} aria-current=${section === path ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <div class="who">
        <span class=${'live l-' + live} role="status" title="Live updates from the event stream">${LIVE_TEXT[live]}</span>
        <span id="who">${session.name} <span class="role">${session.role}</span></span>
        ${session.via === 'none'
          ? html`<span class="role" title="serve --insecure-no-auth: anyone who reaches this address can act">no authentication</span>`
          : html`<button type="button" id="logout" class="secondary small" onClick=${onLogout}>Log out</button>`}
      </div>
    </header>
    <main id="main" ref=${main} tabindex="-1">${page}</main>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    // The page says whether this browser has a session: without one, the login form at once (no
    // request that the API would answer 401); with one, who it is.
    const hint = document.querySelector('meta[name="nightshift-session"]');
    if (hint && hint.content === 'no') setSession(null);
    else api('api/session').then(({ data }) => setSession(data), () => setSession(null));
    return onUnauthorized(() => setSession(null));
  }, []);
  useEffect(() => {
    if (session === null) disconnectLive();
  }, [session]);
  const logout = async () => {
    try {
      await api('api/session', { method: 'DELETE' });
    } finally {
      setSession(null);
    }
  };
  if (session === undefined) return html`<p class="boot">Loading…</p>`;
  if (session === null) return html`<${Login} onLogin=${setSession} />`;
  return html`<${Shell} session=${session} onLogout=${logout} />`;
}

/**
 * On a phone, list tables show each row as a card: every cell is labelled with its column's
 * heading (a data-label the style sheet shows before the cell), kept up to date as rows change.
 */
function labelCells(root) {
  for (const table of root.querySelectorAll('table.stack')) {
    const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
    for (const row of table.tBodies[0] ? table.tBodies[0].rows : []) {
      [...row.cells].forEach((cell, i) => {
        if (cell.colSpan === 1 && heads[i] && cell.dataset.label !== heads[i]) cell.dataset.label = heads[i];
      });
    }
  }
}

const root = document.getElementById('app');
let labelling = false;
new MutationObserver(() => {
  if (labelling) return;
  labelling = true;
  requestAnimationFrame(() => {
    labelling = false;
    labelCells(root);
  });
}).observe(root, { childList: true, subtree: true });

render(html`<${App} />`, root);
