/**
 * `nightshift serve` as a real process: it serves the dashboard, the REST API and the metrics
 * until SIGTERM, and refuses a bad or busy port with exit 2 and one line naming it.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { cliFor } from './run-cli.ts';

const [sqlite] = backends().filter((b) => b.name === 'sqlite');

describe('nightshift serve', () => {
  afterAll(() => sqlite.cleanup());

  it('serves the API and /metrics, and exits 0 on SIGTERM', async () => {
    const cli = cliFor(sqlite.freshUrl('serve'));
    expect((await cli.run(['run', 'count', 'items=7'])).code).toBe(0);
    const server = cli.spawn(['serve', '--port', '0']);
    try {
      const base = await waitFor(() => /listening on (http:\/\/\S+)/.exec(server.stdout())?.[1], 20_000, 'the listening line');
      const executions = (await (await fetch(`${base}/api/executions`)).json()) as { jobName: string; status: string }[];
      expect(executions).toEqual([expect.objectContaining({ jobName: 'count', status: 'COMPLETED' })]);
      expect(await (await fetch(`${base}/`)).text()).toContain('<title>Nightshift</title>');
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toContain('nightshift_executions{job="count",status="COMPLETED"} 1');
      server.child.kill('SIGTERM');
      const end = await server.exited;
      expect(end.code, end.stderr).toBe(0);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('refuses a bad port, and one already in use, with exit 2 and one line', async () => {
    const cli = cliFor(sqlite.freshUrl('serve-bad'));
    const bad = await cli.run(['serve', '--port', '70000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('nightshift: --port must be at most 65535, got 70000');
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as { port: number }).port;
    try {
      const taken = await cli.run(['serve', '--port', String(port)]);
      expect(taken.code).toBe(2);
      expect(taken.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^nightshift: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))]);
    } finally {
      busy.close();
    }
  });
});
