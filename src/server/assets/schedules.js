// Schedules: each trigger with its next fire time (none while paused, or once it never fires again) and its actions, and the
// recent firings with their outcomes; one trigger's page shows its settings and its own firings,
// which fast triggers cannot push out of view.
import { ConfirmButton, Empty, Loading, Notice } from './components.js';
import { api, go, html, interval, paramText, time, useLoad } from './lib.js';
import { useState } from './preact-hooks.js';

/**
 * How a schedule fires: once at its time, or its cron expression or interval with its bounds (times
 * in UTC, as everywhere here). A time, and a bound with its time, never break across lines: a
 * narrow column wraps between them ("from 2099-01-01 00:00:00" / "until 2099-03-31 00:00:00"), not
 * inside a date at its hyphens.
 */
function timing(s) {
  if (s.at) return html`once at <span class="nowrap">${time(s.at)}</span>`;
  const repeat = s.cron ? s.cron + (s.tz && s.tz !== 'UTC' ? ' (' + s.tz + ')' : '') : 'every ' + interval(s.everyMs);
  return html`${repeat}${s.startAt ? html` <span class="nowrap">from ${time(s.startAt)}</span>` : null}${s.endAt ? html` <span class="nowrap">until ${time(s.endAt)}</span>` : null}`;
}

/**
 * Why a trigger that is not paused has no next fire time: a one-shot is done (it fired, or its time
 * passed as a skipped misfire), a bounded trigger ended (past its endAt). Null while it will fire.
 */
function over(s) {
  if (s.paused || s.nextFireTime) return null;
  return s.at ? 'done' : s.endAt ? 'ended' : null;
}

/** Its state as a badge: paused, done or ended (it never fires again), or active. */
function State({ s }) {
  if (s.paused) return html`<span class="status s-stopped">paused</span>`;
  const o = over(s);
  return o ? html`<span class="status">${o}</span>` : html`<span class="status s-completed">active</span>`;
}

/** Its next fire time, or a dash that says why there is none. */
const nextFire = (s) => (s.paused ? '— (paused)' : over(s) ? '— (' + over(s) + ')' : time(s.nextFireTime));

const scheduleHref = (name) => '#/schedules/' + encodeURIComponent(name);

/** Firings on a page of a schedule's page (`?limit=` another number, up to the API's 1000); "Older" reads the page before its oldest fire time. */
const PAGE = 50;

function Actions({ s, reload, setError, onRemoved, inline = true }) {
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
    (onRemoved || reload)();
  };
  return html`<div class=${inline ? 'actions inline' : 'actions'} id=${inline ? undefined : 'actions'}>
    ${s.paused
      ? html`<button type="button" class="small" onClick=${post('resume')}>Resume</button>`
      : html`<button type="button" class="small" onClick=${post('pause')}>Pause</button>`}
    <${ConfirmButton} small label="Trigger now" message=${'Run job ' + s.job + ' now with the parameters of schedule ' + s.name + '.'} run=${trigger} />
    <${ConfirmButton} small danger label="Remove" message=${'Remove schedule ' + s.name + ' and its history. Executions it started stay.'} run=${remove} />
  </div>`;
}

/** A table of firings; `own`: one schedule's, without the schedule column. */
function Firings({ list, own, empty }) {
  const cols = own ? 5 : 6;
  return html`<div class="table-wrap"><table class="stack" id="firings">
    <thead><tr>${own ? null : html`<th>Schedule</th>`}<th>Fire time</th><th>Fired at</th><th>Fired by node</th><th>Outcome</th><th>Execution</th></tr></thead>
    <tbody>${list.length
      ? list.map((f) => html`<tr data-fire-time=${f.fireTime}>${own ? null : html`<td><a href=${scheduleHref(f.trigger)}>${f.trigger}</a></td>`}<td class="nowrap">${time(f.fireTime)}</td><td class="nowrap">${time(f.firedAt)}</td><td>${f.node || '—'}</td>
          <td>${f.outcome}${f.detail ? html`<div class="desc">${typeof f.detail === 'string' ? f.detail : JSON.stringify(f.detail)}</div>` : null}</td>
          <td>${f.executionId ? html`<a href=${'#/executions/' + f.executionId}>#${f.executionId}</a>` : '—'}</td></tr>`)
      : html`<${Empty} cols=${cols}>${empty}</${Empty}>`}</tbody></table></div>`;
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
        ? list.map((s) => html`<tr data-name=${s.name}><th scope="row"><a href=${scheduleHref(s.name)}>${s.name}</a></th><td><a href=${'#/jobs/' + encodeURIComponent(s.job)}>${s.job}</a></td>
            <td><code>${timing(s)}</code></td><td class="params">${paramText(s.params)}</td>
            <td><${State} s=${s} /></td>
            <td class="nowrap">${nextFire(s)}</td>
            <td class="nowrap">${time(s.lastFireTime)}${s.lastExecutionId ? html` <a href=${'#/executions/' + s.lastExecutionId}>#${s.lastExecutionId}</a>` : null}</td>
            ${operator ? html`<td><${Actions} s=${s} reload=${reload} setError=${setError} /></td>` : null}</tr>`)
        : html`<${Empty} cols="8">No schedule. Add one with <code>nightshift schedule add</code> or PUT /api/schedules/NAME.</${Empty}>`}</tbody></table></div>`}</${Loading}>
    <h2>Recent firings</h2>
    <p class="muted small">The last 20 of all schedules; a schedule's own firings are on its page (click its name).</p>
    <${Loading} state=${fires}>${(list) => html`<${Firings} list=${list} empty="No firing yet." />`}</${Loading}>`;
}

/** One schedule: its settings, its actions and its own firings, newest first, PAGE at a time. */
export function ScheduleDetail({ name, query, session }) {
  const before = query.get('before') || '';
  const limit = Math.min(1000, Math.max(1, Number(query.get('limit')) || PAGE));
  const mine = (k, d) => (k === 'schedule' || k === 'schedule-removed') && d != null && d.name === name;
  const path = 'api/schedules/' + encodeURIComponent(name);
  const [state, reload] = useLoad(async () => (await api(path)).data, [name], mine);
  const firingsUrl = path + '/firings?limit=' + limit + (before ? '&before=' + encodeURIComponent(before) : '');
  const [fires] = useLoad(async () => (await api(firingsUrl)).data, [name, before, limit], mine, 2000);
  const here = 'schedules/' + encodeURIComponent(name);
  const [error, setError] = useState(null);
  return html`<${Loading} state=${state}>${(s) => html`<div class="title-row"><h1>Schedule ${s.name}</h1>
      <${State} s=${s} /></div>
    <p class="muted small"><a href="#/schedules">← All schedules</a></p>
    ${session.role === 'operator' ? html`<${Actions} s=${s} reload=${reload} setError=${setError} onRemoved=${() => go('schedules')} inline=${false} />` : null}
    <${Notice} error=${error} />
    <div class="grid two">
      <section class="card wide" aria-labelledby="settings-h"><h2 id="settings-h">Settings</h2>
        <dl class="facts" id="schedule-settings">
          <dt>Job</dt><dd><a href=${'#/jobs/' + encodeURIComponent(s.job)}>${s.job}</a></dd>
          <dt>Timing</dt><dd><code>${timing(s)}</code></dd>
          <dt>Parameters</dt><dd class="params">${paramText(s.params) || '—'}</dd>
          <dt>Next fire time</dt><dd>${nextFire(s)}</dd>
          <dt>Last fired</dt><dd>${time(s.lastFireTime)}${s.lastExecutionId ? html` <a href=${'#/executions/' + s.lastExecutionId}>#${s.lastExecutionId}</a>` : null}</dd>
          <dt>Misfire</dt><dd>${s.misfire === 'skip' ? 'skip' : 'fire once'} a fire time more than ${interval(s.misfireThresholdMs)} late</dd>
          <dt>Concurrent</dt><dd>${s.noConcurrent ? 'no: a due firing waits while the previous one runs' : 'yes'}</dd>
          <dt>Defined in</dt><dd>${s.source === 'config' ? 'the config' : 'the API or CLI'}</dd>
        </dl>
      </section>
      <section class="card wide" aria-labelledby="firings-h"><h2 id="firings-h">${before ? 'Older firings' : 'Firings'}</h2>
        <${Loading} state=${fires}>${(list) => html`<${Firings} list=${list} own empty=${before ? 'None older.' : 'Never fired.'} />
          ${before || list.length >= limit
            ? html`<nav class="pager" aria-label="Pages">
                ${before ? html`<button type="button" class="secondary" onClick=${() => go(here, { limit: query.get('limit') })}>Newest</button>` : null}
                ${list.length >= limit ? html`<button type="button" class="secondary" onClick=${() => go(here, { limit: query.get('limit'), before: list[list.length - 1].fireTime })}>Older</button>` : null}
              </nav>`
            : null}`}</${Loading}>
      </section>
    </div>`}</${Loading}>`;
}
