// Nodes: live ones and those that ended in the last hour, with heartbeat age, lease, running
// work and concurrency; an operator can drain a live node, and resume a draining one.
import { ConfirmButton, Empty, Loading } from './components.js';
import { api, duration, html, time, useLoad } from './lib.js';

export function Nodes({ session }) {
  const [state, reload] = useLoad(async () => (await api('api/nodes')).data, [], (k) => k === 'node');
  const operator = session.role === 'operator';
  const act = (n, action) => async () => {
    await api('api/nodes/' + encodeURIComponent(n.name) + '/' + action, { method: 'POST' });
    reload();
  };
  return html`<h1>Nodes</h1>
    <${Loading} state=${state}>${(list) => html`<div class="table-wrap"><table class="stack" id="nodes">
      <thead><tr><th>Name</th><th>Status</th><th>Host</th><th>Heartbeat</th><th>Lease left</th><th>Running</th><th>Partitions</th><th>Jobs</th><th>Started</th>${operator ? html`<th>Actions</th>` : null}</tr></thead>
      <tbody>${list.length
        ? list.map((n) => html`<tr data-name=${n.name}><th scope="row">${n.name}</th>
            <td><span class=${'dot n-' + n.status}></span>${n.status}${n.suspected ? ' (suspected)' : ''}${n.draining ? ', draining' : ''}${n.endReason ? html`<div class="desc">${n.endReason}</div>` : null}</td>
            <td>${n.host}:${n.pid}</td>
            <td class="nowrap">${n.status === 'alive' ? duration(n.heartbeatAgeMs) + ' ago' : time(n.lastHeartbeat)}<div class="desc">every ${duration(n.heartbeatMs)}</div></td>
            <td class="nowrap">${n.status === 'alive' ? duration(n.leaseLeftMs) : '—'}<div class="desc">lease ${duration(n.leaseMs)}</div></td>
            <td>${n.running.length} of ${n.concurrency}${n.running.map((id) => html` <a href=${'#/executions/' + id}>#${id}</a>`)}</td>
            <td>${n.runningPartitions.length || '—'}</td>
            <td class="params">${n.jobs.join(', ')}</td>
            <td class="nowrap">${time(n.startedAt)}${n.endedAt ? html`<div class="desc">ended ${time(n.endedAt)}</div>` : null}</td>
            ${operator
              ? html`<td>${n.status !== 'alive' ? null : n.draining
                  ? html`<${ConfirmButton} small label="Resume" message=${'Node ' + n.name + ' takes work again (within a heartbeat), its scheduler too. What it handed over stays queued for any node.'} run=${act(n, 'resume')} />`
                  : html`<${ConfirmButton} small danger label="Drain" message=${'Node ' + n.name + ' stops taking work, stops its running steps at their next chunk boundary and hands them over to other nodes.'} run=${act(n, 'drain')} />`}</td>`
              : null}</tr>`)
        : html`<${Empty} cols="10">No node has joined in the last hour. Start one with <code>nightshift node</code>.</${Empty}>`}</tbody></table></div>`}</${Loading}>`;
}
