// The overview: what runs now with its progress, recent failures, throughput over the last hour,
// the nodes and the next firings.
import { Chart, Empty, Loading, Progress, RestartedAs, Status } from './components.js';
import { api, currentStep, duration, html, isRunning, number, paramText, span, time, topSteps, useLoad, useNow } from './lib.js';

const HOUR = 3600_000;
const BUCKET = 60_000;

/**
 * Items written per minute over the last hour, from the recent executions: each execution's
 * items are spread evenly over the time it ran.
 */
function throughput(executions, now) {
  const start = Math.floor((now - HOUR) / BUCKET) * BUCKET;
  const n = Math.ceil((now - start) / BUCKET);
  const xs = Array.from({ length: n }, (_, i) => (start + i * BUCKET) / 1000);
  const ys = new Array(n).fill(0);
  for (const e of executions) {
    if (!e.startTime) continue;
    const a = Date.parse(e.startTime);
    const b = e.endTime ? Date.parse(e.endTime) : now;
    const written = topSteps(e.steps).reduce((sum, s) => sum + s.writeCount, 0);
    if (!written || b < start) continue;
    const len = Math.max(1, b - a);
    for (let i = Math.max(0, Math.floor((a - start) / BUCKET)); i < n && start + i * BUCKET < b; i++) {
      const lo = Math.max(a, start + i * BUCKET);
      const hi = Math.min(b, start + (i + 1) * BUCKET);
      if (hi > lo) ys[i] += (written * (hi - lo)) / len;
    }
  }
  return [xs, ys.map((y) => Math.round(y))];
}

const executionEvents = (kind) => kind === 'execution';
/** The most queued executions the overview lists (the next to run). */
const QUEUED_SHOWN = 10;
/** The most queued executions the overview counts (more shows as 50+). */
const QUEUED_COUNTED = 50;

/**
 * What runs now, and apart from it what waits for a node: an execution that is STARTING without a
 * node has been queued and no node has claimed it yet (it has no step, progress or run time to
 * show). A STARTING execution that a node has claimed is about to run, and is listed as running.
 */
function Running() {
  const [state] = useLoad(
    async () => {
      const [active, starting, queue] = await Promise.all([
        api('api/executions?status=STARTED,STOPPING&steps=1&limit=50'),
        api('api/executions?status=STARTING&steps=1&limit=50'),
        // The queue itself, oldest first (the order nodes claim it in): the next to run at the top.
        api('api/queue?limit=' + (QUEUED_COUNTED + 1)),
      ]);
      const claimed = starting.data.filter((e) => e.node);
      const running = [...active.data, ...claimed].sort((a, b) => b.id - a.id);
      // Read a moment apart: one claimed in between is listed as running only.
      const runningIds = new Set(running.map((e) => e.id));
      const queued = queue.data.slice(0, QUEUED_COUNTED).filter((e) => !runningIds.has(e.id));
      return { running, queued, moreQueued: queue.data.length > QUEUED_COUNTED };
    },
    [],
    executionEvents,
  );
  const now = useNow();
  const { queued = [], moreQueued = false } = state.data || {};
  return html`<section class="card wide" aria-labelledby="running-h">
    <h2 id="running-h">Running now</h2>
    <${Loading} state=${state}>${({ running }) => html`<div class="table-wrap"><table class="stack" id="running">
      <thead><tr><th>Execution</th><th>Job</th><th>Node</th><th>Step</th><th class="grow">Progress</th><th>Running for</th></tr></thead>
      <tbody>${running.length
        ? running.map((e) => {
            const step = currentStep(e);
            return html`<tr data-id=${e.id}>
              <td><a href=${'#/executions/' + e.id}>#${e.id}</a> <${Status} status=${e.status} /></td>
              <td>${e.jobName}</td><td>${e.node || '—'}</td><td>${step ? step.name : html`<span class="muted">starting</span>`}</td>
              <td><${Progress} progress=${step && step.progress} stepKey=${e.id + '/' + (step && step.name)} startTime=${step && step.startTime} running=${isRunning(e.status)} /></td>
              <td>${duration(span(e.startTime, null, now))}</td></tr>`;
          })
        : html`<${Empty} cols="6">Nothing runs now.</${Empty}>`}</tbody></table></div>`}</${Loading}>
  </section>
  ${queued.length
    ? html`<section class="card wide" aria-labelledby="queued-h">
        <h2 id="queued-h">Queued <span class="muted">(${queued.length}${moreQueued ? '+' : ''}), waiting for a node: the next to run first</span></h2>
        <div class="table-wrap"><table class="stack compact" id="queued">
          <thead><tr><th>Execution</th><th>Job</th><th>Status</th><th>Parameters</th><th>Waiting for</th><th>Queued at</th></tr></thead>
          <tbody>${queued.slice(0, QUEUED_SHOWN).map((e) => html`<tr data-id=${e.id}>
            <td class="c-head"><a href=${'#/executions/' + e.id}>#${e.id}</a></td><td class="c-head">${e.jobName}</td>
            <td class="c-head"><${Status} status=${e.status} /> <span class="muted small">waiting for a node</span></td>
            <td class="params c-full" title=${paramText(e.parameters)}>${paramText(e.parameters)}</td>
            <td class="nowrap">${duration(span(e.createTime, null, now))}</td><td class="nowrap">${time(e.createTime)}</td></tr>`)}</tbody>
        </table></div>
        ${queued.length > QUEUED_SHOWN || moreQueued
          ? html`<p class="small"><a href="#/executions?status=STARTING">All the queued executions</a> (the ${QUEUED_SHOWN} next to run are shown)</p>`
          : null}
      </section>`
    : null}`;
}

/** The most failures the overview lists. */
const FAILURES_SHOWN = 8;
/** How many of the newest failures it reads to find them (a few may have been resolved since). */
const FAILURES_READ = 50;

/** A failure that a restart of its instance has since completed: nothing is left to do for it. */
const resolved = (e) => Boolean(e.restartedAs && e.restartedAs.status === 'COMPLETED');

/**
 * Recent failures that still need someone: a FAILED execution whose instance a restart has since
 * COMPLETED is left out (counted below the list, with a link to all failures), because this card
 * is what an operator acts on, and it has room for a few; the executions list keeps every failure,
 * each marked with its restart. A failure whose restart is queued, running or failed again stays,
 * marked with that restart and its status.
 */
function Failures() {
  const [state] = useLoad(async () => (await api('api/executions?status=FAILED&limit=' + FAILURES_READ)).data, [], executionEvents, 2000);
  return html`<section class="card" aria-labelledby="failures-h">
    <h2 id="failures-h">Recent failures</h2>
    <${Loading} state=${state}>${(list) => {
      const open = list.filter((e) => !resolved(e));
      const fixed = list.length - open.length;
      return html`<ul class="plain" id="failures">${open.length
        ? open.slice(0, FAILURES_SHOWN).map((e) => html`<li data-id=${e.id}><a href=${'#/executions/' + e.id}>#${e.id} ${e.jobName}</a> <span class="muted">${time(e.endTime)}</span>
            ${e.restartedAs ? html` <${RestartedAs} later=${e.restartedAs} />` : null}
            <div class="reason">${e.exitStatus.description || e.exitStatus.code}</div></li>`)
        : html`<li class="muted">${!fixed ? 'No failures.' : list.length < FAILURES_READ ? 'No unresolved failures.' : `No unresolved failures among the ${FAILURES_READ} newest.`}</li>`}</ul>
      ${fixed
        ? html`<p class="muted small" id="resolved-failures">${fixed === 1 ? '1 failure' : fixed + ' failures'}${list.length < FAILURES_READ ? '' : ` of the ${FAILURES_READ} newest`} that a restart has since completed ${fixed === 1 ? 'is' : 'are'} not listed. <a href="#/executions?status=FAILED">All failures</a></p>`
        : null}`;
    }}</${Loading}>
  </section>`;
}

function Throughput() {
  const [state] = useLoad(async () => (await api('api/executions?steps=1&limit=200')).data, [], executionEvents, 5000);
  const now = useNow(15_000);
  return html`<section class="card wide" aria-labelledby="tp-h">
    <h2 id="tp-h">Throughput, last hour</h2>
    <${Loading} state=${state}>${(list) => {
      const data = throughput(list, now);
      const total = data[1].reduce((a, b) => a + b, 0);
      return html`<${Chart} label=${'Items written per minute over the last hour: ' + number(total) + ' in all'} yLabel="items/min"
        series=${[{ label: 'items written per minute', stroke: '#2f5fb3', fill: 'rgba(47,95,179,0.12)', width: 2, points: { show: false } }]} data=${data} height=${180} />`;
    }}</${Loading}>
  </section>`;
}

function Nodes() {
  const [state] = useLoad(async () => (await api('api/nodes')).data, [], (k) => k === 'node', 2000);
  return html`<section class="card" aria-labelledby="nodes-h">
    <h2 id="nodes-h">Nodes</h2>
    <${Loading} state=${state}>${(list) => html`<ul class="plain" id="overview-nodes">${list.length
      ? list.map((n) => html`<li><span class=${'dot n-' + n.status}></span><strong>${n.name}</strong> <span class="muted">${n.status}${n.draining ? ', draining' : ''}</span>
          <div class="muted small">${n.running.length} of ${n.concurrency ?? '?'} running · heartbeat ${duration(n.heartbeatAgeMs)} ago</div></li>`)
      : html`<li class="muted">No node has joined.</li>`}</ul>`}</${Loading}>
  </section>`;
}

function NextFirings() {
  const [state] = useLoad(async () => (await api('api/schedules')).data, [], (k) => k === 'schedule' || k === 'schedule-removed', 2000);
  return html`<section class="card" aria-labelledby="next-h">
    <h2 id="next-h">Next firings</h2>
    <${Loading} state=${state}>${(list) => {
      const next = list.filter((s) => !s.paused && s.nextFireTime).sort((a, b) => a.nextFireTime.localeCompare(b.nextFireTime)).slice(0, 8);
      return html`<ul class="plain" id="next-firings">${next.length
        ? next.map((s) => html`<li><strong>${s.name}</strong> <span class="muted">runs ${s.job}</span><div class="small">${time(s.nextFireTime)} UTC</div></li>`)
        : html`<li class="muted">No active schedule.</li>`}</ul>`;
    }}</${Loading}>
  </section>`;
}

export function Overview() {
  return html`<h1>Overview</h1><p class="muted small">Times are UTC. Updated live.</p>
    <div class="grid"><${Running} /><${Throughput} /><${Failures} /><${Nodes} /><${NextFirings} /></div>`;
}
