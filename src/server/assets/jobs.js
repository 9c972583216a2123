// Jobs: the list, and one job's launch form (typed inputs from its parameter schema), its
// history and its duration trend.
import { useState } from './preact-hooks.js';
import { Chart, Empty, ExecutionStatus, Loading, Notice } from './components.js';
import { DATE_PATTERN, DATE_PLACEHOLDER, api, duration, go, html, isoUtc, paramText, sameExit, span, time, useLoad } from './lib.js';

/** What a server started without a config says of the jobs it cannot launch. */
const NO_CONFIG = 'This server was started without a config, so it cannot launch jobs (start serve with --config FILE).';

/** What a server with a config says of a job the live nodes run that its config lacks. */
const NOT_IN_CONFIG = "This job is not in this server's config, so it cannot be launched from here (add it to the config serve loads); its history is below.";

/** Where a job that is not defined here runs. */
const runsOn = (j) => 'Runs on ' + (j.nodes || []).join(', ') + '.';

/** Whether the server has a config: it defines some job (undefined while the list loads). */
const hasConfig = (jobs) => (jobs ? jobs.some((j) => j.launchable !== false) : undefined);

export function JobList({ jobs }) {
  const notHere = jobs.some((j) => j.launchable === false);
  const configured = hasConfig(jobs);
  return html`<h1>Jobs</h1>
    ${notHere && !configured ? html`<p class="notice" id="no-config">${NO_CONFIG} These are the jobs the cluster's live nodes run.</p>` : null}
    ${notHere && configured ? html`<p class="notice" id="not-in-config">Jobs marked “not in this server's config” run on live nodes but cannot be launched from here; their pages show their history.</p>` : null}
    <div class="table-wrap"><table class="stack" id="jobs">
      <thead><tr><th>Job</th><th>Description</th><th>Parameters</th><th>Steps</th></tr></thead>
      <tbody>${jobs.length
        ? jobs.map((j) => j.launchable === false
          ? html`<tr><td><a href=${'#/jobs/' + encodeURIComponent(j.name)}>${j.name}</a></td><td class="muted">${configured ? "Not in this server's config. " : ''}${runsOn(j)}</td><td>—</td><td>—</td></tr>`
          : html`<tr><td><a href=${'#/jobs/' + encodeURIComponent(j.name)}>${j.name}</a></td><td>${j.description || ''}</td>
            <td>${Object.keys(j.parameters).join(', ') || '—'}</td><td>${(j.steps || []).map((s) => s.name).join(' → ')}</td></tr>`)
        : html`<${Empty} cols="4">No job is defined.</${Empty}>`}</tbody></table></div>`;
}

/** The form value of a parameter's default. */
function initial(p) {
  if (p.default == null) return p.type === 'boolean' ? false : '';
  if (p.type === 'date') return isoUtc(p.default);
  return p.default;
}

/** The JSON value of a form field, by the parameter's type; undefined when left empty. */
function valueOf(p, v) {
  if (p.type === 'boolean') return Boolean(v);
  if (v === '' || v == null) return undefined;
  if (p.type === 'int' || p.type === 'number') return Number(v);
  // As typed: the server reads dates (UTC unless they have an offset) and refuses an impossible one.
  if (p.type === 'date') return String(v).trim();
  return String(v);
}

/** `optional`: the next instance's rule may give the parameter (the job's incrementer). */
function Field({ name, p, value, onChange, optional }) {
  const id = 'param-' + name;
  const common = { id, name, required: p.required && p.default == null && !optional };
  const hint = [p.type === 'date' ? 'date, ISO 8601 in UTC (e.g. ' + DATE_PLACEHOLDER + ')' : p.type, p.required ? 'required' : 'optional', p.identifying ? 'identifying' : 'not identifying', p.default != null ? 'default ' + (p.type === 'date' ? isoUtc(p.default) : p.default) : null]
    .filter(Boolean)
    .join(', ');
  let input;
  if (p.type === 'boolean') input = html`<input type="checkbox" ...${common} checked=${value} onChange=${(ev) => onChange(ev.currentTarget.checked)} />`;
  else if (p.type === 'int' || p.type === 'number')
    input = html`<input type="number" step=${p.type === 'int' ? '1' : 'any'} inputmode=${p.type === 'int' ? 'numeric' : 'decimal'} ...${common} value=${value} onInput=${(ev) => onChange(ev.currentTarget.value)} />`;
  else if (p.type === 'date')
    input = html`<input type="text" class="date" pattern=${DATE_PATTERN} placeholder=${DATE_PLACEHOLDER} autocomplete="off" spellcheck="false" aria-describedby=${id + '-hint'}
      title=${'ISO 8601 in UTC, e.g. ' + DATE_PLACEHOLDER} ...${common} value=${value} onInput=${(ev) => onChange(ev.currentTarget.value)} />`;
  else input = html`<input type="text" ...${common} value=${value} onInput=${(ev) => onChange(ev.currentTarget.value)} />`;
  return html`<div class="field"><label for=${id}>${name}${p.type === 'date' ? html` <span class="muted">(UTC)</span>` : null}</label>${input}<div class="hint" id=${id + '-hint'}>${hint}${p.description ? ' — ' + p.description : ''}</div></div>`;
}

/** A refusal of a launch because its instance already completed: the next instance would run. */
const alreadyCompleted = (err) => err != null && err.status === 409 && /already completed/.test(err.message);

function LaunchForm({ job }) {
  const params = Object.entries(job.parameters);
  const [values, setValues] = useState(Object.fromEntries(params.map(([n, p]) => [n, initial(p)])));
  const [routing, setRouting] = useState({ node: '', key: '' });
  const [next, setNext] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  // Ticking it answers a refusal as already completed: that error has done its work.
  const onNext = (ev) => {
    setNext(ev.currentTarget.checked);
    if (alreadyCompleted(error)) setError(null);
  };
  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { params: {} };
      for (const [n, p] of params) {
        // As `submit --next` with only the words typed: a field left as the form filled it in is
        // not sent, so that the job's incrementer, not the form's default, gives its value.
        if (next && values[n] === initial(p)) continue;
        const v = valueOf(p, values[n]);
        if (v !== undefined) body.params[n] = v;
      }
      if (routing.node) body.node = routing.node;
      if (routing.key) body.key = routing.key;
      if (next) body.next = true;
      const { data } = await api('api/jobs/' + encodeURIComponent(job.name) + '/executions', { method: 'POST', body });
      go('executions/' + data.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="launch" id="launch-form" onSubmit=${submit} aria-labelledby="launch-h">
    <h2 id="launch-h">Launch</h2>
    ${params.length ? params.map(([n, p]) => html`<${Field} name=${n} p=${p} value=${values[n]} onChange=${(v) => setValues({ ...values, [n]: v })} optional=${next} />`) : html`<p class="muted">This job takes no parameters.</p>`}
    <details><summary>Routing</summary>
      <div class="field"><label for="route-node">Node</label><input id="route-node" value=${routing.node} onInput=${(ev) => setRouting({ ...routing, node: ev.currentTarget.value })} /><div class="hint">start it on this node only (if that node dies or drains, any node with the job takes it over)</div></div>
      <div class="field"><label for="route-key">Affinity key</label><input id="route-key" value=${routing.key} onInput=${(ev) => setRouting({ ...routing, key: ev.currentTarget.value })} /><div class="hint">requests with the same key go to the same node</div></div>
    </details>
    <div class="field check">
      <label for="launch-next"><input type="checkbox" id="launch-next" checked=${next} aria-describedby="launch-next-hint" onChange=${onNext} /> Run as a new instance (next run.id)</label>
      <div class="hint" id="launch-next-hint">the job's next instance, even if one with these parameters completed: run.id one higher than the newest instance's (or what the job's incrementer gives)</div>
    </div>
    <${Notice} error=${error} />
    ${alreadyCompleted(error) && !next ? html`<p class="hint" id="next-hint">To run it again, tick “Run as a new instance (next run.id)” above and launch.</p>` : null}
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Submitting…' : 'Launch ' + job.name}</button>
  </form>`;
}

function History({ name, wide }) {
  const [state] = useLoad(async () => (await api('api/executions?limit=50&job=' + encodeURIComponent(name))).data, [name], (k, e) => k === 'execution' && e.jobName === name, 2000);
  return html`<${Loading} state=${state}>${(list) => {
    const done = list.filter((e) => e.startTime && e.endTime).reverse();
    const data = [done.map((e) => Date.parse(e.startTime) / 1000), done.map((e) => (Date.parse(e.endTime) - Date.parse(e.startTime)) / 1000)];
    return html`<section class=${wide ? 'card wide' : 'card'} aria-labelledby="trend-h"><h2 id="trend-h">Duration trend</h2>
        ${done.length >= 2
          ? html`<${Chart} label=${'Durations of the last ' + done.length + ' finished executions, in seconds'} yLabel="seconds" data=${data}
              series=${[{ label: 'duration (s)', stroke: '#8a4fbf', width: 2, points: { show: true, size: 6 } }]} height=${180} />`
          : html`<p class="muted">The trend shows once two executions have finished.</p>`}
      </section>
      <section class="card wide" aria-labelledby="history-h"><h2 id="history-h">History</h2>
        <div class="table-wrap"><table class="stack compact" id="history"><thead><tr><th>Id</th><th>Status</th><th>Parameters</th><th>Started</th><th>Duration</th><th>Exit</th></tr></thead>
        <tbody>${list.length
          ? list.map((e) => html`<tr data-id=${e.id}><td class="c-head"><a href=${'#/executions/' + e.id}>#${e.id}</a></td><td class="c-head"><${ExecutionStatus} e=${e} /></td><td class="params c-full" title=${paramText(e.parameters)}>${paramText(e.parameters)}</td>
              <td class="nowrap c-bare">${time(e.startTime)}</td><td>${duration(span(e.startTime, e.endTime))}</td><td class=${'c-late' + (sameExit(e) ? ' c-redundant' : '')}>${e.exitStatus.code}</td></tr>`)
          : html`<${Empty} cols="6">Never run.</${Empty}>`}</tbody></table></div>
      </section>`;
  }}</${Loading}>`;
}

export function JobDetail({ name, session, jobs }) {
  const [state] = useLoad(async () => (await api('api/jobs/' + encodeURIComponent(name))).data, [name]);
  const configured = hasConfig(jobs);
  return html`<${Loading} state=${state}>${(job) => {
    if (job.launchable === false) {
      // Not defined on this server (not in its config, or no config): its history, and why there is no launch form.
      return html`<h1>Job ${job.name}</h1>
        ${configured
          ? html`<p class="notice" id="not-in-config">${NOT_IN_CONFIG} ${runsOn(job)}</p>`
          : configured === false
            ? html`<p class="notice" id="no-config">${NO_CONFIG} ${runsOn(job)}</p>`
            : html`<p class="notice">This server has no definition of this job, so it cannot launch it. ${runsOn(job)}</p>`}
        <div class="grid two"><${History} name=${job.name} wide=${true} /></div>`;
    }
    return html`<h1>Job ${job.name}</h1>
    ${job.description ? html`<p>${job.description}</p>` : null}
    <p class="muted small">Steps: ${job.steps.map((s) => s.name + ' (' + s.type + ')').join(' → ')}${job.restartable ? '' : ' · not restartable'}${job.maxRunning ? ' · at most ' + job.maxRunning + ' running at once' : ''}${job.fireTimeIdentifying === false ? ' · fireTime does not identify its instances' : ''}</p>
    <div class="grid two">
      ${session.role === 'operator' ? html`<section class="card">${html`<${LaunchForm} job=${job} />`}</section>` : null}
      <${History} name=${job.name} wide=${session.role !== 'operator'} />
    </div>`;
  }}</${Loading}>`;
}
