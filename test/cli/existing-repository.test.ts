/**
 * The commands that only read or act on what the repository holds check that it is there on the
 * connection they then use: on PostgreSQL, one connection for the check and the command, not
 * one for each (counted at a TCP proxy in front of the server). The check itself, its errors and
 * what it leaves alone, are test/cli/bad-input's and test/repository/missing-repository's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { cliFor } from './run-cli.ts';

describe.each(backends().filter((b) => b.name === 'postgres'))('a command on an existing repository ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('checks that the repository is there on the one connection it then reads with', async () => {
    const url = backend.freshUrl('existing-conn');
    const direct = new URL(url);
    await cliFor(url).json(['submit', 'noop']);
    const proxy = await startTcpProxy(direct.hostname, Number(direct.port || 5432));
    try {
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      const cli = cliFor(proxied.toString());
      for (const args of [['executions'], ['schedule', 'list'], ['prune', '--older-than', '1d', '--dry-run']]) {
        const before = proxy.accepted;
        const r = await cli.run(args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(proxy.accepted - before, args.join(' ')).toBe(1);
      }
    } finally {
      await proxy.close();
    }
  });
});
