/* global document, fetch, Node */
// The dashboard's script (served as a file: the page's Content-Security-Policy allows no inline
// script). It asks the API again two seconds after each refresh. Data is only ever set as text
// (never as HTML), so job parameters and error messages cannot inject markup. When the API
// answers 401 it shows the login form, which exchanges an API token for a session cookie.
const $ = (id) => document.getElementById(id);
const time = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) : '');

function cell(content, className) {
  const td = document.createElement('td');
  if (content instanceof Node) td.append(content); else td.textContent = content == null ? '' : String(content);
  if (className) td.className = className;
  return td;
}

function fill(id, rows, empty) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren();
  if (!rows.length) {
    const tr = body.insertRow();
    tr.append(cell(empty, 'empty'));
    tr.firstChild.colSpan = 9;
    return;
  }
  for (const { key, cells } of rows) {
    const tr = body.insertRow();
    tr.dataset.key = key;
    tr.append(...cells);
  }
}

/** Items read and written so far by an execution's steps, with skips, and a bar for the share written. */
function progress(e) {
  if (!e.steps || !e.steps.length) return cell('');
  const sum = (k) => e.steps.reduce((n, s) => n + (s[k] || 0), 0);
  const read = sum('readCount'), written = sum('writeCount');
  const skipped = sum('readSkipCount') + sum('processSkipCount') + sum('writeSkipCount');
  const box = document.createElement('div');
  const text = document.createElement('div');
  text.className = 'progress-text';
  text.textContent = 'read ' + read + ', written ' + written + (skipped ? ', skipped ' + skipped : '') +
    ' (' + e.steps.map((s) => s.name + ' ' + s.status).join(', ') + ')';
  const bar = document.createElement('div');
  bar.className = 'bar';
  const done = document.createElement('div');
  done.style.width = (read ? Math.round((100 * written) / read) : 0) + '%';
  bar.append(done);
  box.append(text, bar);
  return cell(box);
}

class Unauthorized extends Error {}

async function json(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

function showLogin(show) {
  $('login').hidden = !show;
  $('main').hidden = show;
  if (show) $('token').focus();
}

async function refresh() {
  try {
    const [list, nodes, schedules, me] = await Promise.all([
      json('api/executions?limit=50&steps=1'), json('api/nodes'), json('api/schedules'), json('api/session'),
    ]);
    showLogin(false);
    $('who').textContent = me.via === 'none' ? 'no authentication' : 'signed in as ' + me.name + ' (' + me.role + ')';
    $('logout').hidden = me.via !== 'session';
    fill('executions', list.map((e) => ({ key: e.id, cells: [
      cell(e.id), cell(e.jobName), cell(e.status, 'status ' + e.status), cell(e.node), cell(time(e.startTime)), cell(time(e.endTime)), progress(e),
    ] })), 'no executions yet');
    fill('failures', list.filter((e) => e.status === 'FAILED').map((e) => ({ key: e.id, cells: [
      cell(e.id), cell(e.jobName), cell(time(e.endTime)), cell(e.exitStatus.description || e.exitStatus.code),
    ] })), 'no failures');
    fill('nodes', nodes.map((n) => ({ key: n.name, cells: [
      cell(n.name), cell(n.status + (n.draining ? ' (draining)' : ''), 'status ' + n.status), cell(time(n.lastHeartbeat)), cell(n.running.join(', ') || '-'), cell(n.jobs.join(', ')),
    ] })), 'no nodes have joined');
    fill('schedules', schedules.map((s) => ({ key: s.name, cells: [
      cell(s.name), cell(s.job), cell(s.cron !== null ? 'cron ' + s.cron + (s.tz && s.tz !== 'UTC' ? ' (' + s.tz + ')' : '') : 'every ' + s.everyMs + ' ms'),
      cell(s.paused ? 'paused' : 'active'), cell(s.paused ? '-' : time(s.nextFireTime)), cell(s.lastExecutionId ?? '-'),
    ] })), 'no schedules');
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(true);
    else $('updated').textContent = 'cannot reach the API: ' + err.message;
  }
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  const r = await fetch('api/session', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + $('token').value.trim(), 'content-type': 'application/json' },
    body: '{}',
  });
  $('token').value = '';
  if (!r.ok) {
    $('login-error').textContent = (await r.json().catch(() => ({}))).error || 'HTTP ' + r.status;
    return;
  }
  await refresh();
});

$('logout').addEventListener('click', async () => {
  await fetch('api/session', { method: 'DELETE' });
  showLogin(true);
});

// The next refresh is scheduled once this one is done, so slow answers never pile up.
(async function loop() {
  if ($('login').hidden) await refresh();
  setTimeout(loop, 2000);
})();
