// Pieces that several pages use: status badges, progress, confirmed actions, charts, the
// timeline of an execution's steps and partitions, and notices.
import { useEffect, useRef, useState } from './preact-hooks.js';
import uPlot from './uplot.js';
import { amount, duration, html, number, rateOf, span, time } from './lib.js';

export const Status = ({ status }) => html`<span class=${'status s-' + String(status).toLowerCase()}>${status}</span>`;

/**
 * The newest later execution of an execution's instance (the API's `restartedAs`): "→ #12", linked,
 * and its status. A FAILED execution marked → COMPLETED needs nothing more: a restart did its work.
 */
export const RestartedAs = ({ later }) => html`<span class="restarted-as" data-restarted-as=${later.id}>
  <span aria-hidden="true">→ </span><a href=${'#/executions/' + later.id} aria-label=${'restarted as execution ' + later.id + ', ' + later.status}>#${later.id}</a> <${Status} status=${later.status} /></span>`;

/** An execution's status, and its restart's when it has one (lists of executions). */
export const ExecutionStatus = ({ e }) => html`<${Status} status=${e.status} />${e.restartedAs ? html` <${RestartedAs} later=${e.restartedAs} />` : null}`;

export function Notice({ error, children }) {
  if (!error && !children) return null;
  return html`<p class=${error ? 'notice error' : 'notice'} role=${error ? 'alert' : 'status'}>${error ? error.message || String(error) : children}</p>`;
}

export const Empty = ({ cols, children }) => html`<tr><td class="empty" colspan=${cols}>${children}</td></tr>`;

export function Loading({ state, children }) {
  if (state.data === undefined && !state.error) return html`<p class="muted" aria-busy="true">Loading…</p>`;
  if (state.data === undefined) return html`<${Notice} error=${state.error} />`;
  return html`${state.error ? html`<${Notice} error=${state.error} />` : null}${children(state.data)}`;
}

/**
 * A step's progress: a bar with done of total, the rate and the ETA. Without a known total, the
 * amount done and the rate.
 */
export function Progress({ progress, stepKey, startTime, running }) {
  if (!progress) return html`<span class="muted">—</span>`;
  const { done, total, unit } = progress;
  const share = total ? Math.min(1, done / total) : total === 0 ? 1 : null;
  const { rate, eta } = running ? rateOf(stepKey, progress, startTime) : { rate: null, eta: null };
  const per = unit === 'bytes' ? '/s' : ' items/s';
  const label = amount(done, unit) + (total != null ? ' of ' + amount(total, unit) : '') + (share != null ? ' (' + Math.floor(share * 100) + '%)' : '');
  return html`<div class="progress" data-done=${done} data-total=${total ?? ''}>
    ${share != null
      ? html`<div class="bar" role="progressbar" aria-label="progress" aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${done}>
          <div class="fill" style=${{ width: (share * 100).toFixed(1) + '%' }}></div></div>`
      : null}
    <div class="progress-text">
      <span class="done">${label}</span>
      ${rate != null ? html` · <span class="rate">${amount(Math.round(rate), unit)}${per}</span>` : null}
      ${eta != null ? html` · <span class="eta">ETA ${duration(eta)}</span>` : null}
    </div>
  </div>`;
}

/**
 * A button whose action is confirmed in a modal dialog first (Escape or Cancel closes it). The
 * dialog names what will happen; errors of the action show in it.
 */
export function ConfirmButton({ label, title, message, run, danger, small }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const dialog = useRef(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await run();
      setOpen(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class=${(danger ? 'danger' : '') + (small ? ' small' : '')} onClick=${() => setOpen(true)}>${label}</button>
    <dialog ref=${dialog} class="confirm" aria-labelledby="confirm-title" onClose=${() => setOpen(false)}>
      ${open
        ? html`<h2 id="confirm-title">${title || label + '?'}</h2>
            <p>${message}</p>
            <${Notice} error=${error} />
            <div class="dialog-buttons">
              <button type="button" class="secondary" onClick=${() => setOpen(false)}>Cancel</button>
              <button type="button" class=${danger ? 'danger' : 'primary'} disabled=${busy} onClick=${confirm}>${busy ? 'Working…' : label}</button>
            </div>`
        : null}
    </dialog>`;
}

/**
 * A time axis' tick labels, in UTC and 24-hour like every other time in the console: the hour and
 * minute (and second when ticks are seconds apart), the date under the first tick, and dates alone
 * when ticks are days apart.
 */
export function utcTicks(splits, increment) {
  return splits.map((s, i) => {
    const iso = new Date(s * 1000).toISOString();
    if (increment >= 86400) return iso.slice(0, 10);
    const clock = increment < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
    return i === 0 ? clock + '\n' + iso.slice(0, 10) : clock;
  });
}

/** The width a y axis needs for its tick labels (at least 40 px): called by uPlot as it lays the chart out. */
function valuesWidth(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size; // uPlot asks again while it converges: keep the first answer
  const longest = (values ?? []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '');
  u.ctx.font = axis.font[0];
  return Math.max(40, Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / window.devicePixelRatio));
}

/**
 * Room for the time axis' labels in uPlot's 12 px font, whose widest (a date, 2024-01-01) is 70 px:
 * ticks at least 80 px apart, so that labels do not run into each other at phone width, and 40 px
 * right of the plot, so that the last label, centred on a tick at the plot's edge, is not cut.
 */
const X_SPACE = 80;
const X_ROOM = 40;

/** The least space between time ticks: X_SPACE, and a second, as ticks between seconds would repeat their second's label. */
const timeSpace = (u, axisIdx, min, max, plotDim) => Math.max(X_SPACE, (0.99 * plotDim) / (max - min));

/** A uPlot chart that fits its container's width. Time axes and the legend's time are UTC, 24-hour. */
export function Chart({ series, data, height = 200, label, yLabel, xTime = true }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const width = () => Math.max(240, el.clientWidth);
    const opts = {
      width: width(),
      height,
      scales: { x: { time: xTime } },
      padding: [null, X_ROOM, null, null],
      // Ticks on UTC minutes, hours and days, whatever the browser's time zone.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      axes: [
        {
          stroke: '#3a4150',
          grid: { stroke: '#e3e6ec' },
          space: xTime ? timeSpace : X_SPACE,
          ...(xTime
            ? {
                values: (u, splits, _axis, _space, increment) => {
                  const labels = utcTicks(splits, increment);
                  el.dataset.xTicks = labels.join('|');
                  return labels;
                },
              }
            : {}),
        },
        // Numbers as elsewhere in the console (1,000), not in the browser's locale; as wide as the
        // widest of them (uPlot's axis-autosize demo), so that 150,000 does not run into the label.
        { stroke: '#3a4150', grid: { stroke: '#e3e6ec' }, label: yLabel, size: valuesWidth, values: (u, splits) => splits.map((v) => number(v)) },
      ],
      series: [xTime ? { label: 'time (UTC)', value: (u, v) => (v == null ? '—' : time(new Date(v * 1000).toISOString())) } : { label: 'run' }, ...series],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    plot.current = new uPlot(opts, data, el);
    const resize = () => plot.current && plot.current.setSize({ width: width(), height });
    const ro = new ResizeObserver(resize);
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [series.length, height]);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<figure class="chart"><div ref=${box} role="img" aria-label=${label}></div></figure>`;
}

/**
 * The timeline of an execution: one lane per node, a bar per step and partition from its start
 * to its end (or now), coloured by status. Bars that overlap on a node stack in rows.
 */
export function Timeline({ execution, now }) {
  const items = [];
  for (const s of execution.steps || []) {
    items.push({ ...s, kind: 'step' });
    for (const p of s.partitions || []) items.push({ ...p, kind: 'partition' });
  }
  const started = items.filter((i) => i.startTime);
  if (!started.length) return html`<p class="muted">No step has started yet.</p>`;
  const t0 = Math.min(...started.map((i) => Date.parse(i.startTime)));
  const t1 = Math.max(t0 + 1, ...started.map((i) => (i.endTime ? Date.parse(i.endTime) : now)));
  const lanes = new Map();
  for (const i of started.sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime))) {
    const node = i.node || '(no node)';
    if (!lanes.has(node)) lanes.set(node, []);
    const rows = lanes.get(node);
    const start = Date.parse(i.startTime);
    const end = i.endTime ? Date.parse(i.endTime) : now;
    let row = rows.findIndex((r) => r.end <= start);
    if (row < 0) row = rows.push({ end, bars: [] }) - 1;
    rows[row].end = end;
    rows[row].bars.push({ ...i, start, end });
  }
  const pct = (t) => ((100 * (t - t0)) / (t1 - t0)).toFixed(2) + '%';
  return html`<div class="timeline" aria-label="Timeline of steps and partitions by node">
    <div class="tl-scale"><span>${time(new Date(t0).toISOString())}</span><span>${duration(t1 - t0)}</span></div>
    ${[...lanes].map(
      ([node, rows]) => html`<div class="tl-lane" data-node=${node}>
        <div class="tl-node">${node}</div>
        <ul class="tl-rows">
          ${rows.map(
            (r) => html`<li class="tl-row"><ul>
              ${r.bars.map(
                (b) => html`<li class=${'tl-bar ' + b.kind + ' s-' + b.status.toLowerCase()} data-node=${node} data-kind=${b.kind} data-name=${b.name}
                  style=${{ left: pct(b.start), width: `max(3px, calc(${pct(b.end)} - ${pct(b.start)}))` }}
                  title=${b.name + ' on ' + node + ': ' + b.status + ', ' + duration(span(b.startTime, b.endTime, now))}>
                  ${b.name.replace(/^.*:(partition\d+)$/, '$1')}<span class="tl-status"> · ${b.status}</span>
                </li>`,
              )}
            </ul></li>`,
          )}
        </ul>
      </div>`,
    )}
  </div>`;
}

/** JSON shown as text (never as markup), collapsed behind a summary when long. */
export function Json({ value, summary }) {
  const text = JSON.stringify(value ?? {}, null, 2);
  if (!summary) return html`<pre class="json">${text}</pre>`;
  return html`<details><summary>${summary}</summary><pre class="json">${text}</pre></details>`;
}
