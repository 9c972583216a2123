/**
 * Serving Nightshift from an application's own process, on both backends: its Prometheus metrics
 * in the application's prom-client registry (one /metrics), and the API refusing to start locked
 * for everyone (no token).
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { noop } from '../../examples/nightshift.config.ts';
import { createLogger, silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { loadTokens } from '../../src/server/tokens.ts';
import { UsageError } from '../../src/core/errors.ts';
import { backends } from '../support/backends.ts';

describe.each(backends())('metrics in an application registry ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it("adds Nightshift's metrics to the app's registry, beside its default metrics, fresh at each collect", async () => {
    const ns = await createNightshift({ db: backend.freshUrl('metrics-app'), jobs: [noop], logger: silentLogger });
    try {
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      new Counter({ name: 'app_requests_total', help: 'requests', registers: [registry] }).inc(3);
      // The app's registry has the default metrics already: adding them again would throw.
      const metrics = createMetrics(ns, { registry });
      expect(metrics.registry).toBe(registry);
      await ns.run('noop');
      // The app's own route renders its registry: that reads the repository, with no scrape() call.
      let text = await registry.metrics();
      expect(text).toContain('app_requests_total 3');
      expect(text).toContain('nightshift_executions{job="noop",status="COMPLETED"} 1\n');
      expect(text).toContain('nightshift_executions_ended_total{job="noop",status="COMPLETED"} 1\n');
      expect(text.match(/^# TYPE process_cpu_user_seconds_total/gm)).toHaveLength(1);
      await ns.runNextInstance('noop');
      text = await registry.metrics();
      expect(text).toContain('nightshift_executions{job="noop",status="COMPLETED"} 2\n');
      // scrape() renders the same registry.
      expect(await metrics.scrape()).toContain('app_requests_total 3');
    } finally {
      await ns.close();
    }
  });

  it("serves the app's metrics, and nightshift_repository_up 0 without Nightshift's others, while the repository does not answer, and says so in the log", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const warnings = () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    const ns = await createNightshift({ db: backend.freshUrl('metrics-down'), jobs: [noop], logger });
    const registry = new Registry();
    new Counter({ name: 'app_requests_total', help: 'requests', registers: [registry] }).inc(2);
    const own = createMetrics(ns);
    createMetrics(ns, { registry });
    await ns.run('noop');
    const before = await registry.metrics();
    expect(before).toContain('nightshift_executions{job="noop",status="COMPLETED"} 1\n');
    expect(before).toContain('nightshift_repository_up 1\n');
    await ns.close(); // its repository connection is gone: every read fails
    const text = await registry.metrics();
    expect(text).toContain('app_requests_total 2');
    expect(text).toContain('nightshift_repository_up 0\n');
    expect(text).not.toMatch(/^nightshift_(executions|nodes|oldest_queued_seconds)[{ ]/m);
    const warning = "Prometheus metrics: the job repository did not answer; this scrape reports nightshift_repository_up 0 and leaves Nightshift's other metrics out";
    expect(warnings()).toEqual([warning]);
    // Nightshift's own registry (serve's /metrics) answers alike, with the process's metrics.
    const ownText = await own.scrape();
    expect(ownText).toContain('nightshift_repository_up 0\n');
    expect(ownText).toContain('process_cpu_user_seconds_total');
    expect(ownText).not.toMatch(/^nightshift_executions\{/m);
    expect(warnings()).toEqual([warning, warning]);
  });

  it('keeps a registry of its own, with the default metrics, when given none', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('metrics-own'), jobs: [noop], logger: silentLogger });
    try {
      const metrics = createMetrics(ns);
      await ns.run('noop');
      const text = await metrics.scrape();
      expect(text).toContain('nightshift_executions{job="noop",status="COMPLETED"} 1\n');
      expect(text).toContain('process_cpu_user_seconds_total');
      // Collecting the registry directly reads the repository too.
      expect(await metrics.registry.metrics()).toContain('nightshift_nodes{status="alive"}');
    } finally {
      await ns.close();
    }
  });

  it('createHttpApi refuses an empty token list (an unset NIGHTSHIFT_API_TOKENS), naming the variable', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('no-tokens'), jobs: [noop], logger: silentLogger });
    try {
      const tokens = loadTokens({ env: undefined });
      expect(tokens).toEqual([]);
      expect(() => createHttpApi(ns, { tokens })).toThrow(UsageError);
      expect(() => createHttpApi(ns, { tokens })).toThrow(/no API tokens.*NIGHTSHIFT_API_TOKENS.*tokens: 'none'/);
      await createHttpApi(ns, { tokens: 'none' }).close();
    } finally {
      await ns.close();
    }
  });
});
