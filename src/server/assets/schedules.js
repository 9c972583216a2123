// Schedules: each trigger with its next fire time (none while paused) and its actions, and the
// recent firings with their outcomes.
import { ConfirmButton, Empty, Loading, Notice } from './components.js';
import { api, go, html, interval, paramText, time, useLoad } from './lib.js';
import { useState } from './preact-hooks.js';

const timing = (s) => (s.cron ? s.cron + (s.tz && s.tz !== 'UTC' ? ' (' + s.tz + ')' : '') : 'every ' + interval(s.everyMs));

function Actions({ s, reload, setError }) {
  const post = (action) => async () => {
    try {
      setError(null);
      await api('api/schedules/' + encodeURIComponent(s.name) + '/' + action, { method: 'POST' });
      reload();
    } catch (err) {
      setError(err);
    }
  };
  const trigger = async () => {
    const { data } = await api('api/schedules/' + encodeURIComponent(s.name) + '/trigger', { method: 'POST' });
    go('executions/' + data.id);
  };
  const remove = async () => {
    await api('api/schedules/' + encodeURIComponent(s.name), { method: 'DELETE' });
    reload();
  };
  return html`<div class="actions inline">
    ${s.paused
      ? html`<button type="button" class="small" onClick=${post('resume')}>Resume</button>`
      : html`<button type="button" class="small" onClick=${post('pause')}>Pause</button>`}
    <${ConfirmButton} small label="Trigger now" message=${'Run job ' + s.job + ' now with the parameters of schedule ' + s.name + '.'} run=${trigger} />
    <${ConfirmButton} small danger label="Remove" message=${'Remove schedule ' + s.name + ' and its history. Executions it started stay.'} run=${remove} />
  </div>`;
}

export function Schedules({ session }) {
  const [state, reload] = useLoad(async () => (await api('api/schedules')).data, [], (k) => k === 'schedule' || k === 'schedule-removed');
  const [fires] = useLoad(async () => (await api('api/firings?limit=20')).data, [], (k) => k === 'schedule' || k === 'execution', 3000);
  const [error, setError] = useState(null);
  const operator = session.role === 'operator';
  return html`<h1>Schedules</h1>
    <${Notice} error=${error} />
    <${Loading} state=${state}>${(list) => html`<div class="table-wrap"><table class="stack" id="schedules">
      <thead><tr><th>Name</th><th>Job</th><th>Timing</th><th>Parameters</th><th>State</th><th>Next fire time</th><th>Last fired</th>${operator ? html`<th>Actions</th>` : null}</tr></thead>
      <tbody>${list.length
        ? list.map((s) => html`<tr data-name=${s.name}><th scope="row">${s.name}</th><td><a href=${'#/jobs/' + encodeURIComponent(s.job)}>${s.job}</a></td>
            <td><code>${timing(s)}</code></td><td class="params">${paramText(s.params)}</td>
            <td>${s.paused ? html`<span class="status s-stopped">paused</span>` : html`<span class="status s-completed">active</span>`}</td>
            <td class="nowrap">${s.paused ? '— (paused)' : time(s.nextFireTime)}</td>
            <td class="nowrap">${time(s.lastFireTime)}${s.lastExecutionId ? html` <a href=${'#/executions/' + s.lastExecutionId}>#${s.lastExecutionId}</a>` : null}</td>
            ${operator ? html`<td><${Actions} s=${s} reload=${reload} setError=${setError} /></td>` : null}</tr>`)
        : html`<${Empty} cols="8">No schedule. Add one with <code>nightshift schedule add</code> or PUT /api/schedules/NAME.</${Empty}>`}</tbody></table></div>`}</${Loading}>
    <h2>Recent firings</h2>
    <${Loading} state=${fires}>${(list) => html`<div class="table-wrap"><table class="stack" id="firings">
      <thead><tr><th>Schedule</th><th>Fire time</th><th>Fired at</th><th>Fired by node</th><th>Outcome</th><th>Execution</th></tr></thead>
      <tbody>${list.length
        ? list.map((f) => html`<tr><td>${f.trigger}</td><td class="nowrap">${time(f.fireTime)}</td><td class="nowrap">${time(f.firedAt)}</td><td>${f.node || '—'}</td>
            <td>${f.outcome}${f.detail ? html`<div class="desc">${typeof f.detail === 'string' ? f.detail : JSON.stringify(f.detail)}</div>` : null}</td>
            <td>${f.executionId ? html`<a href=${'#/executions/' + f.executionId}>#${f.executionId}</a>` : '—'}</td></tr>`)
        : html`<${Empty} cols="6">No firing yet.</${Empty}>`}</tbody></table></div>`}</${Loading}>`;
}
