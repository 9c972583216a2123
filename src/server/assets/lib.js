// The console's shared parts: the template tag, the API client, the live event stream, data
// loading hooks, and formatting. Text from the API is only ever rendered as text (Preact sets
// it as text nodes and attributes), so parameters and error messages cannot inject markup.
import { h } from './preact.js';
import { useCallback, useEffect, useRef, useState } from './preact-hooks.js';
import htm from './htm.js';

export const html = htm.bind(h);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const unauthorizedListeners = new Set();
/** Called when the API answers 401: the session ended. */
export const onUnauthorized = (fn) => (unauthorizedListeners.add(fn), () => unauthorizedListeners.delete(fn));

/**
 * A request to the API with the session cookie. State-changing requests send JSON (the server
 * accepts no other kind). Answers { data, next } (next: the cursor of the next page, if any).
 */
export async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['content-type'] = 'application/json';
  if (token) headers.authorization = 'Bearer ' + token;
  let r;
  try {
    r = await fetch(path, { method, headers, credentials: 'same-origin', body: method === 'GET' ? undefined : JSON.stringify(body ?? {}) });
  } catch {
    throw new ApiError(0, 'The server does not answer.');
  }
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (r.status === 401 && !token) for (const fn of unauthorizedListeners) fn();
  if (!r.ok) throw new ApiError(r.status, (data && (data.error || data.message)) || 'HTTP ' + r.status);
  return { data, next: r.headers.get('x-next-cursor') };
}

// The live event stream: one EventSource for the whole console; pages subscribe to its events.
const liveListeners = new Set();
let source = null;
/** Subscribes to the stream's events: fn(kind, data). */
export const onLive = (fn) => (liveListeners.add(fn), () => liveListeners.delete(fn));

const KINDS = ['ready', 'execution', 'node', 'schedule', 'schedule-removed', 'resync', 'status'];

/** Opens the stream; onState('live' | 'connecting' | 'closed' | 'unavailable'). */
export function connectLive(onState) {
  disconnectLive();
  const es = new EventSource('api/events');
  source = es;
  onState('connecting');
  for (const kind of KINDS) {
    es.addEventListener(kind, (ev) => {
      let data = null;
      try {
        data = ev.data ? JSON.parse(ev.data) : null;
      } catch {
        return;
      }
      if (kind === 'ready') onState('live');
      if (kind === 'status') onState(data && data.repository === 'unavailable' ? 'unavailable' : 'live');
      for (const fn of liveListeners) fn(kind, data);
    });
  }
  es.onerror = () => {
    if (source !== es) return;
    onState(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    // A stream the server refuses (the session ended) is not retried by the browser: ask who we are.
    if (es.readyState === EventSource.CLOSED) api('api/session').catch(() => {});
  };
}

export function disconnectLive() {
  if (source) source.close();
  source = null;
}

/**
 * Loads data with `fn`, and again when the event stream reports a change that `wants(kind, data)`
 * accepts (and after a resync or reconnection), at most once per `minGapMs`: a burst of events
 * costs one request, not one per event.
 */
export function useLoad(fn, deps, wants, minGapMs = 1000) {
  const [state, setState] = useState({ data: undefined, error: null });
  const seq = useRef(0);
  const load = useCallback(async () => {
    const n = ++seq.current;
    try {
      const data = await fn();
      if (n === seq.current) setState({ data, error: null });
    } catch (err) {
      if (n === seq.current) setState((s) => ({ data: s.data, error: err }));
    }
  }, deps);
  useEffect(() => {
    setState({ data: undefined, error: null });
    load();
  }, [load]);
  useEffect(() => {
    if (!wants) return undefined;
    let timer = null;
    let last = 0;
    const off = onLive((kind, data) => {
      if (kind !== 'ready' && kind !== 'resync' && !wants(kind, data)) return;
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        load();
      }, Math.max(0, last + minGapMs - Date.now()));
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [load]);
  return [state, load];
}

/** A clock that ticks every `ms`, for ages and durations that grow while shown. */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

// Formatting.
export const time = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) : '—');
export const shortTime = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : '—');

/**
 * Dates are typed as ISO 8601 text in UTC (not in a date picker, which shows the browser's locale
 * and time zone): a date, or a date and time with a space or T, with seconds and a zone (Z or
 * +HH:MM) if wanted. Without a zone it is UTC. The server reads them (core/dates.ts), so that the
 * console, the API and the CLI read a date the same way and refuse the same impossible ones; the
 * pattern is core/dates.ts's ISO_DATE (the browser checks the form, the server the calendar).
 */
export const DATE_PATTERN = String.raw`\d{4}-\d{2}-\d{2}([Tt ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?([Zz]|[+\-]\d{2}(:?\d{2})?)?)?`;
export const DATE_PLACEHOLDER = '2024-01-01T00:00:00Z';

/** A timestamp as the date inputs show it: 2024-01-01T00:00:00Z (milliseconds only when there are some). */
export const isoUtc = (iso) => (iso ? new Date(iso).toISOString().replace('.000Z', 'Z') : '');

export function duration(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const s = Math.round(ms / 1000);
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + (s % 60) + ' s';
  const hours = Math.floor(m / 60);
  return hours + ' h ' + (m % 60) + ' min';
}

/**
 * A trigger's interval as the CLI prints it and its --every takes it (src/core/duration.ts,
 * formatDuration): in the largest unit that divides it, e.g. 5m, 90s, 1500ms.
 */
export function interval(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  for (const [unit, size] of [['w', 604_800_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]]) {
    if (ms >= size && ms % size === 0) return ms / size + unit;
  }
  return ms + 'ms';
}

export const span = (start, end, now = Date.now()) => (start ? (end ? Date.parse(end) : now) - Date.parse(start) : null);

export const number = (n) => (n == null ? '—' : Number(n).toLocaleString('en-US'));

export function bytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return v.toFixed(1) + ' ' + units[i];
}

export const amount = (n, unit) => (unit === 'bytes' ? bytes(n) : number(n));

/** Parameters as one line of text: `items=20 tag=x`. */
export const paramText = (p) =>
  Object.entries(p || {})
    .map(([k, v]) => k + '=' + (typeof v === 'string' ? v : JSON.stringify(v)))
    .join(' ');

/** An exit code that says no more than the status beside it (COMPLETED and COMPLETED, or not ended yet). */
export const sameExit = (e) => e.exitStatus.code === e.status || e.exitStatus.code === 'EXECUTING' || e.exitStatus.code === 'UNKNOWN';

export const RUNNING = ['STARTING', 'STARTED', 'STOPPING'];
export const isRunning = (status) => RUNNING.includes(status);

/** Steps without partitions (a partitioned step's counters already add up its partitions'). */
export const topSteps = (steps) => (steps || []).filter((s) => !/:partition\d+$/.test(s.name));

// Rate and ETA from the progress seen over time (the last minute), per step.
const samples = new Map();
const WINDOW_MS = 60_000;

/**
 * How fast a step goes and when it should end: from the progress seen in the last minute, or
 * before there are two observations, from its progress since the step started.
 */
export function rateOf(key, progress, startTime, now = Date.now()) {
  if (!progress) return { rate: null, eta: null };
  let list = samples.get(key);
  if (!list) samples.set(key, (list = []));
  const lastSample = list[list.length - 1];
  if (!lastSample || lastSample.done !== progress.done) list.push({ t: now, done: progress.done });
  while (list.length > 2 && now - list[0].t > WINDOW_MS) list.shift();
  let rate = null;
  const first = list[0];
  const last = list[list.length - 1];
  if (list.length >= 2 && last.t - first.t >= 1000) rate = ((last.done - first.done) * 1000) / (last.t - first.t);
  else if (startTime && now - Date.parse(startTime) > 500) rate = (progress.done * 1000) / (now - Date.parse(startTime));
  const eta = rate && progress.total != null ? ((progress.total - progress.done) / rate) * 1000 : null;
  return { rate, eta };
}

/** The step an execution is at: its last started top-level step. */
export function currentStep(e) {
  const steps = topSteps(e.steps);
  return steps.filter((s) => s.status === 'STARTED' || s.status === 'STARTING' || s.status === 'STOPPING').pop() || steps[steps.length - 1] || null;
}

/** Reads `#/path?query` into { parts, query }. */
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs || '') };
}

export function go(path, query) {
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)).toString() : '';
  location.hash = '#/' + path + (qs ? '?' + qs : '');
}
