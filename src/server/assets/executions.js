// Executions: the filterable, cursor-paged list, and one execution's details with its timeline,
// counters, failure, ExecutionContexts and actions.
import { useState } from './preact-hooks.js';
import { ConfirmButton, Empty, ExecutionStatus, Json, Loading, Progress, Status, Timeline } from './components.js';
import { DATE_PATTERN, DATE_PLACEHOLDER, api, currentStep, duration, go, html, isRunning, number, paramText, sameExit, span, time, useLoad, useNow } from './lib.js';

const STATUSES = ['STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FAILED', 'COMPLETED', 'ABANDONED', 'UNKNOWN'];
const FILTERS = ['job', 'status', 'node', 'q', 'from', 'to'];

/**
 * A date filter is sent as typed: the server reads it as the API and the CLI read every date (UTC
 * unless it has an offset, a date alone is its midnight) and answers 400 naming the field for one
 * it cannot read or an impossible date, which shows here rather than silently listing everything.
 */
const dateText = (text) => String(text).trim();

export function ExecutionList({ query, jobs }) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || '']));
  const cursor = query.get('cursor') || '';
  // The page size: 25, or as the address says (?limit=N).
  const limit = query.get('limit') || '';
  const key = query.toString();
  const [state] = useLoad(async () => {
    const qs = new URLSearchParams({ limit: limit || '25' });
    for (const k of FILTERS) if (filters[k]) qs.set(k, k === 'from' || k === 'to' ? dateText(filters[k]) : filters[k]);
    if (cursor) qs.set('cursor', cursor);
    return api('api/executions?' + qs);
  }, [key], cursor ? null : (k) => k === 'execution', 2000);
  const [form, setForm] = useState(filters);
  const [formKey, setFormKey] = useState(key);
  if (formKey !== key) {
    setFormKey(key);
    setForm(filters);
  }
  const set = (k) => (ev) => setForm({ ...form, [k]: ev.currentTarget.value });
  const submit = (ev) => {
    ev.preventDefault();
    go('executions', { ...form, limit });
  };
  const pages = (query.get('pages') || '').split(',').filter(Boolean);
  return html`<h1>Executions</h1>
    <form class="filters" onSubmit=${submit} aria-label="Filter executions">
      <label>Job <select name="job" value=${form.job} onChange=${set('job')}><option value="">any</option>${(jobs || []).map((j) => html`<option value=${j.name}>${j.name}</option>`)}</select></label>
      <label>Status <select name="status" value=${form.status} onChange=${set('status')}><option value="">any</option>${STATUSES.map((s) => html`<option>${s}</option>`)}</select></label>
      <label>Node <input name="node" value=${form.node} onInput=${set('node')} size="10" /></label>
      <label>Parameters contain <input name="q" value=${form.q} onInput=${set('q')} size="12" /></label>
      <label>Created from (UTC) <input name="from" class="date" pattern=${DATE_PATTERN} placeholder=${DATE_PLACEHOLDER} autocomplete="off" spellcheck="false" value=${form.from} onInput=${set('from')} /></label>
      <label>to (UTC) <input name="to" class="date" pattern=${DATE_PATTERN} placeholder=${DATE_PLACEHOLDER} autocomplete="off" spellcheck="false" value=${form.to} onInput=${set('to')} /></label>
      <div class="filter-buttons"><button type="submit" class="primary">Filter</button> <button type="button" class="secondary" onClick=${() => go('executions')}>Clear</button></div>
    </form>
    <${Loading} state=${state}>${({ data, next }) => html`<div class="table-wrap"><table class="stack compact" id="executions">
      <thead><tr><th>Id</th><th>Job</th><th>Status</th><th>Parameters</th><th>Node</th><th>Created</th><th>Duration</th><th>Exit</th></tr></thead>
      <tbody>${data.length
        ? data.map((e) => html`<tr data-id=${e.id}>
            <td class="c-head"><a href=${'#/executions/' + e.id}>#${e.id}</a></td><td class="c-head"><a href=${'#/jobs/' + encodeURIComponent(e.jobName)}>${e.jobName}</a></td><td class="c-head"><${ExecutionStatus} e=${e} /></td>
            <td class="params c-full" title=${paramText(e.parameters)}>${paramText(e.parameters)}</td><td>${e.node || '—'}</td><td class="nowrap c-bare">${time(e.createTime)}</td>
            <td class="nowrap">${duration(span(e.startTime, e.endTime))}</td><td class=${'c-late' + (sameExit(e) ? ' c-redundant' : '')}>${e.exitStatus.code}</td></tr>`)
        : html`<${Empty} cols="8">No execution matches.</${Empty}>`}</tbody></table></div>
      <nav class="pager" aria-label="Pages">
        ${cursor ? html`<button type="button" class="secondary" onClick=${() => go('executions', { ...filters, limit, cursor: pages[pages.length - 1] || '', pages: pages.slice(0, -1).join(',') })}>← Newer</button>` : null}
        ${next ? html`<button type="button" class="secondary" onClick=${() => go('executions', { ...filters, limit, cursor: next, pages: [...pages, cursor].filter(Boolean).join(',') })}>Older →</button>` : null}
      </nav>`}</${Loading}>`;
}

function Actions({ e, runs, reload }) {
  // Restart and abandon act on the newest execution of an instance only (the API refuses others).
  const newer = (runs || []).filter((x) => x.id > e.id);
  if (newer.length) {
    const latest = newer[newer.length - 1];
    return html`<p class="actions muted small" id="actions">A newer execution of this instance acts for it:
      <a href=${'#/executions/' + latest.id}>#${latest.id}</a> <${Status} status=${latest.status} /></p>`;
  }
  const act = (action) => async () => {
    await api('api/executions/' + e.id + '/' + action, { method: 'POST' });
    reload();
  };
  const restart = async () => {
    const { data } = await api('api/executions/' + e.id + '/restart', { method: 'POST' });
    go('executions/' + data.id);
  };
  return html`<div class="actions" id="actions">
    ${e.status === 'FAILED' || e.status === 'STOPPED'
      ? html`<${ConfirmButton} label="Restart" message=${'Restart job ' + e.jobName + ' from where execution #' + e.id + ' stopped: a new execution of the same instance, on the cluster.'} run=${restart} />`
      : null}
    ${e.status === 'STARTING' || e.status === 'STARTED'
      ? html`<${ConfirmButton} label="Stop" danger message=${'Stop execution #' + e.id + ' at its next chunk boundary. It can be restarted later.'} run=${act('stop')} />`
      : null}
    ${['STOPPED', 'FAILED', 'STOPPING', 'UNKNOWN'].includes(e.status)
      ? html`<${ConfirmButton} label="Abandon" danger message=${'Abandon execution #' + e.id + ': it will never be restarted.'} run=${act('abandon')} />`
      : null}
  </div>`;
}

const COUNTERS = [
  ['readCount', 'read'],
  ['writeCount', 'written'],
  ['filterCount', 'filtered'],
  ['skips', 'skipped'],
  ['commitCount', 'commits'],
  ['rollbackCount', 'rollbacks'],
];

const skipsOf = (s) => s.readSkipCount + s.processSkipCount + s.writeSkipCount;
const counter = (s, k) => (k === 'skips' ? skipsOf(s) : s[k]);
const skipTitle = (s) => s.readSkipCount + ' in reading, ' + s.processSkipCount + ' in processing, ' + s.writeSkipCount + ' in writing';

function StepRow({ s, e, now, partition }) {
  return html`<tr class=${partition ? 'partition-row' : ''} data-step=${s.name}>
    <th scope="row" class="nowrap c-head">${partition ? '↳ ' : ''}${s.name}</th><td class="c-head"><${Status} status=${s.status} /></td><td class="nowrap">${s.node || '—'}</td>
    <td class="nowrap">${duration(span(s.startTime, s.endTime, now))}</td>
    ${COUNTERS.map(([k]) => html`<td class="num" title=${k === 'skips' ? skipTitle(s) : undefined}>${number(counter(s, k))}</td>`)}
    <td class="progress-cell c-full"><${Progress} progress=${s.progress} stepKey=${e.id + '/' + s.name} startTime=${s.startTime} running=${isRunning(s.status)} /></td>
    <td class="exit">${s.exitStatus.code}${s.exitStatus.description ? html`<div class="desc">${s.exitStatus.description}</div>` : null}</td>
  </tr>`;
}

/** The step the execution is at, with its progress, rate and ETA, while it runs. */
function Current({ e }) {
  const step = currentStep(e);
  if (!isRunning(e.status) || !step) return null;
  return html`<section class="card wide" aria-labelledby="current-h" id="current">
    <h2 id="current-h">Now: step ${step.name}</h2>
    <${Progress} progress=${step.progress} stepKey=${e.id + '/' + step.name} startTime=${step.startTime} running />
    <p class="muted small">${number(step.readCount)} read, ${number(step.writeCount)} written${skipsOf(step) ? ', ' + number(skipsOf(step)) + ' skipped' : ''}, ${number(step.commitCount)} commits${step.node ? ' · on ' + step.node : ''}</p>
  </section>`;
}

/**
 * The executions of this one's job instance, oldest first: the first run, its restarts and
 * hand-overs, each linked, so that a restarted execution can be followed either way.
 */
function useInstanceRuns(e) {
  return useLoad(
    async () => (await api('api/instances/' + e.instanceId + '/executions')).data,
    [e.instanceId],
    (k, d) => k === 'execution' && d.instanceId === e.instanceId,
    2000,
  )[0];
}

function InstanceRuns({ e, runs }) {
  const list = runs || [{ id: e.id, status: e.status }];
  return html`<ol class="runs" id="instance-runs" aria-label=${'Executions of instance ' + e.instanceId}>
    ${list.map((x) => html`<li data-id=${x.id}>${x.id === e.id
      ? html`<strong aria-current="page">#${x.id}</strong>`
      : html`<a href=${'#/executions/' + x.id}>#${x.id}</a>`} <${Status} status=${x.id === e.id ? e.status : x.status} /></li>`)}
  </ol>`;
}

/**
 * Why it failed: the job's exit description (the error's message; the repository keeps no stack
 * trace, which is in the log of the node that ran it), and the steps and partitions that failed.
 */
function Failure({ e }) {
  const failed = e.steps.flatMap((s) => [s, ...(s.partitions || [])]).filter((s) => s.status === 'FAILED');
  return html`<section class="card wide failure" aria-labelledby="exit-h" id="failure"><h2 id="exit-h">Failure</h2>
    <pre class="exit-description">${e.exitStatus.description}</pre>
    ${failed.map((s) => html`<p class="small failed-step" data-step=${s.name}>Failed in step <strong>${s.name}</strong>${s.node ? ' on ' + s.node : ''}${s.endTime ? ' at ' + time(s.endTime) : ''}${s.exitStatus.description && s.exitStatus.description !== e.exitStatus.description ? ':' : '.'}</p>
      ${s.exitStatus.description && s.exitStatus.description !== e.exitStatus.description ? html`<pre class="exit-description">${s.exitStatus.description}</pre>` : null}`)}
    <p class="muted small">The repository keeps the error's message; its stack trace is in the log of ${e.node ? 'node ' + e.node : 'the node that ran it'}.</p>
  </section>`;
}

export function ExecutionDetail({ id, session }) {
  const [state, reload] = useLoad(async () => (await api('api/executions/' + id)).data, [id], (k, d) => k === 'execution' && String(d.id) === String(id), 1000);
  return html`<${Loading} state=${state}>${(e) => html`<${Execution} e=${e} session=${session} reload=${reload} />`}</${Loading}>`;
}

/** One execution's page, once loaded; the executions of its instance are read once for it. */
function Execution({ e, session, reload }) {
  const now = useNow();
  const runs = useInstanceRuns(e).data;
  return html`
    <div class="title-row"><h1>Execution #${e.id} <span class="muted">${e.jobName}</span></h1><${Status} status=${e.status} /></div>
    ${session.role === 'operator' ? html`<${Actions} e=${e} runs=${runs} reload=${reload} />` : null}
    <div class="grid two">
      <${Current} e=${e} />
      <section class="card" aria-labelledby="about-h"><h2 id="about-h">About</h2>
        <dl class="facts">
          <dt>Job</dt><dd><a href=${'#/jobs/' + encodeURIComponent(e.jobName)}>${e.jobName}</a> (instance ${e.instanceId})</dd>
          <dt>Runs</dt><dd><${InstanceRuns} e=${e} runs=${runs} /></dd>
          <dt>Node</dt><dd>${e.node || '—'}${e.targetNode ? ' (asked for ' + e.targetNode + ')' : ''}</dd>
          ${e.affinityKey ? html`<dt>Affinity key</dt><dd>${e.affinityKey}</dd>` : null}
          <dt>Created</dt><dd>${time(e.createTime)}</dd><dt>Started</dt><dd>${time(e.startTime)}</dd><dt>Ended</dt><dd>${time(e.endTime)}</dd>
          <dt>Duration</dt><dd>${duration(span(e.startTime, e.endTime, now))}</dd>
          <dt>Exit</dt><dd><strong>${e.exitStatus.code}</strong></dd>
          <dt>Skipped</dt><dd>${number(e.skips.read)} read, ${number(e.skips.process)} process, ${number(e.skips.write)} write</dd>
        </dl>
      </section>
      <section class="card" aria-labelledby="params-h"><h2 id="params-h">Parameters</h2>
        <dl class="facts" id="parameters">${Object.entries(e.parameters).map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'string' ? v : JSON.stringify(v)}</dd>`)}</dl>
      </section>
      ${e.status === 'FAILED' && e.exitStatus.description
        ? html`<${Failure} e=${e} />`
        : e.exitStatus.description
          ? html`<section class="card wide" aria-labelledby="exit-h"><h2 id="exit-h">Exit description</h2><pre class="exit-description">${e.exitStatus.description}</pre></section>`
          : null}
      <section class="card wide" aria-labelledby="tl-h"><h2 id="tl-h">Timeline</h2><${Timeline} execution=${e} now=${now} /></section>
      <section class="card wide" aria-labelledby="steps-h"><h2 id="steps-h">Steps</h2>
        <div class="table-wrap"><table id="steps" class="steps stack compact">
          <thead><tr><th>Step</th><th>Status</th><th>Node</th><th>Duration</th>${COUNTERS.map(([, l]) => html`<th class="num">${l}</th>`)}<th>Progress</th><th>Exit</th></tr></thead>
          <tbody>${e.steps.length
            ? e.steps.map((s) => html`<${StepRow} s=${s} e=${e} now=${now} />${(s.partitions || []).map((p) => html`<${StepRow} s=${p} e=${e} now=${now} partition />`)}`)
            : html`<${Empty} cols="12">No step has run yet.</${Empty}>`}</tbody></table></div>
      </section>
      ${e.summary ? html`<section class="card wide" aria-labelledby="sum-h"><h2 id="sum-h">Summary</h2><${Json} value=${e.summary} /></section>` : null}
      <section class="card wide" aria-labelledby="ctx-h"><h2 id="ctx-h">ExecutionContext</h2>
        <h3>Job</h3><${Json} value=${e.context} />
        ${e.steps.map((s) => html`<${Json} value=${s.context} summary=${'Step ' + s.name} />${(s.partitions || []).map((p) => html`<${Json} value=${p.context} summary=${'Partition ' + p.name} />`)}`)}
      </section>
    </div>`;
}

