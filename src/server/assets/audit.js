// The audit log: who did what, to what, when, from where, and how it ended; newest first.
import { useState } from './preact-hooks.js';
import { Empty, Loading } from './components.js';
import { api, go, html, time, useLoad } from './lib.js';

export function Audit({ query }) {
  const actor = query.get('actor') || '';
  const action = query.get('action') || '';
  const cursor = query.get('cursor') || '';
  const [state] = useLoad(async () => {
    const qs = new URLSearchParams({ limit: '50' });
    if (actor) qs.set('actor', actor);
    if (action) qs.set('action', action);
    if (cursor) qs.set('cursor', cursor);
    return api('api/audit?' + qs);
  }, [actor, action, cursor], cursor ? null : (k) => k === 'execution' || k === 'schedule' || k === 'node', 2000);
  const [form, setForm] = useState({ actor, action });
  return html`<h1>Audit</h1>
    <form class="filters" aria-label="Filter the audit log" onSubmit=${(ev) => (ev.preventDefault(), go('audit', form))}>
      <label>Who <input name="actor" value=${form.actor} onInput=${(ev) => setForm({ ...form, actor: ev.currentTarget.value })} size="12" /></label>
      <label>Action <input name="action" value=${form.action} placeholder="e.g. execution.stop" onInput=${(ev) => setForm({ ...form, action: ev.currentTarget.value })} size="16" /></label>
      <div class="filter-buttons"><button type="submit" class="primary">Filter</button> <button type="button" class="secondary" onClick=${() => (setForm({ actor: '', action: '' }), go('audit'))}>Clear</button></div>
    </form>
    <${Loading} state=${state}>${({ data, next }) => html`<div class="table-wrap"><table class="stack" id="audit">
      <thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>From</th><th>Outcome</th></tr></thead>
      <tbody>${data.length
        ? data.map((a) => html`<tr><td class="nowrap">${time(a.at)}</td><td>${a.actor || '—'}${a.role ? html` <span class="muted">(${a.role})</span>` : null}</td>
            <td><code>${a.action}</code></td><td>${a.target || '—'}${a.detail ? html`<div class="desc params">${JSON.stringify(a.detail)}</div>` : null}</td><td>${a.remote || '—'}</td>
            <td><span class=${'status ' + (a.outcome === 'ok' ? 's-completed' : 's-failed')}>${a.outcome}</span>${a.statusCode ? ' ' + a.statusCode : ''}${a.message ? html`<div class="desc">${a.message}</div>` : null}</td></tr>`)
        : html`<${Empty} cols="6">Nothing recorded.</${Empty}>`}</tbody></table></div>
      <nav class="pager" aria-label="Pages">
        ${cursor ? html`<button type="button" class="secondary" onClick=${() => go('audit', { actor, action })}>← Newest</button>` : null}
        ${next ? html`<button type="button" class="secondary" onClick=${() => go('audit', { actor, action, cursor: next })}>Older →</button>` : null}
      </nav>`}</${Loading}>`;
}
