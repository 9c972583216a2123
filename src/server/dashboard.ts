/**
 * The web dashboard (SPEC section 6): one page, no build step, served at `/` by the HTTP API.
 * It asks the API again two seconds after each refresh: executions with the live progress of
 * running steps, failures with their reasons, nodes and schedules. Data is only ever set as text
 * (never as HTML), so job parameters and error messages cannot inject markup.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Nightshift</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
  #updated { color: #66707f; font-size: .85rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
  th { font-weight: 600; background: #eef0f3; }
  .status { font-weight: 600; } .COMPLETED, .alive { color: #17803d; } .FAILED, .dead { color: #b42318; }
  .STARTED, .STARTING, .STOPPING { color: #1a56db; } .STOPPED, .ABANDONED, .left { color: #7a5c00; }
  .bar { height: .5rem; background: #e3e6ea; border-radius: .25rem; min-width: 8rem; }
  .bar > div { height: 100%; background: #1a56db; border-radius: .25rem; }
  .empty { color: #66707f; font-style: italic; }
</style>
</head>
<body>
<h1>Nightshift</h1>
<div id="updated">loading…</div>
<h2>Executions</h2>
<table id="executions"><thead><tr><th>id</th><th>job</th><th>status</th><th>node</th><th>started</th><th>ended</th><th>progress</th></tr></thead><tbody></tbody></table>
<h2>Failures</h2>
<table id="failures"><thead><tr><th>id</th><th>job</th><th>ended</th><th>reason</th></tr></thead><tbody></tbody></table>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>name</th><th>status</th><th>last heartbeat</th><th>running</th><th>jobs</th></tr></thead><tbody></tbody></table>
<h2>Schedules</h2>
<table id="schedules"><thead><tr><th>name</th><th>job</th><th>schedule</th><th>state</th><th>next fire time</th><th>last execution</th></tr></thead><tbody></tbody></table>
<script>
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
async function json(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}
async function refresh() {
  try {
    const [list, nodes, schedules] = await Promise.all([json('api/executions?limit=50&steps=1'), json('api/nodes'), json('api/schedules')]);
    fill('executions', list.map((e) => ({ key: e.id, cells: [
      cell(e.id), cell(e.jobName), cell(e.status, 'status ' + e.status), cell(e.node), cell(time(e.startTime)), cell(time(e.endTime)), progress(e),
    ] })), 'no executions yet');
    fill('failures', list.filter((e) => e.status === 'FAILED').map((e) => ({ key: e.id, cells: [
      cell(e.id), cell(e.jobName), cell(time(e.endTime)), cell(e.exitStatus.description || e.exitStatus.code),
    ] })), 'no failures');
    fill('nodes', nodes.map((n) => ({ key: n.name, cells: [
      cell(n.name), cell(n.status, 'status ' + n.status), cell(time(n.lastHeartbeat)), cell(n.running.join(', ') || '-'), cell(n.jobs.join(', ')),
    ] })), 'no nodes have joined');
    fill('schedules', schedules.map((s) => ({ key: s.name, cells: [
      cell(s.name), cell(s.job), cell(s.cron !== null ? 'cron ' + s.cron + (s.tz && s.tz !== 'UTC' ? ' (' + s.tz + ')' : '') : 'every ' + s.everyMs + ' ms'),
      cell(s.paused ? 'paused' : 'active'), cell(time(s.nextFireTime)), cell(s.lastExecutionId ?? '-'),
    ] })), 'no schedules');
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot reach the API: ' + err.message;
  }
}
// The next refresh is scheduled once this one is done, so slow answers never pile up.
(async function loop() {
  await refresh();
  setTimeout(loop, 2000);
})();
</script>
</body>
</html>
`;
