/**
 * The deployment files of examples/deploy, as far as this machine can check them: the Docker
 * image cannot be built here (its base image comes from a registry), so the test checks that
 * every file the Dockerfile copies exists, that it installs Nightshift from npm, and that the
 * config it copies loads and runs, and that the container's command (a node) starts and drains
 * on SIGTERM with it. The systemd units pass `systemd-analyze verify` (where systemd is
 * installed), with ExecStart pointed at this checkout's bin.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.ts';
import { CLI, ROOT } from '../support/node-procs.ts';

const DEPLOY = join(ROOT, 'examples/deploy');
const run = promisify(execFile);
const env = { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent', NIGHTSHIFT_DB: undefined, NIGHTSHIFT_CONFIG: undefined };
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

describe('examples/deploy', () => {
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => /^[A-Z]+\s/.test(l));

  it("the Dockerfile installs the application's locked dependencies, nightshift at this exact version, and copies files that exist", () => {
    const copies = instructions.filter((l) => l.startsWith('COPY '));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.split(/\s+/).slice(1, -1);
      // package-lock.json is the application's: `npm install` writes it from package.json.
      for (const source of sources.filter((f) => f !== 'package-lock.json')) expect(existsSync(join(DEPLOY, source)), `${copy}: ${source}`).toBe(true);
    }
    expect(copies.join('\n')).toMatch(/^COPY package\.json package-lock\.json \.\/$/m);
    const app = JSON.parse(readFileSync(join(DEPLOY, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(app.dependencies.nightshift).toBe(version);
    expect(instructions.find((l) => l.startsWith('RUN '))).toMatch(/^RUN npm ci --omit=dev /);
    expect(dockerfile).toMatch(/NIGHTSHIFT_CONFIG=\/app\/nightshift\.config\.js/);
    expect(instructions).toContain('ENTRYPOINT ["/app/node_modules/.bin/nightshift"]');
    expect(instructions).toContain('STOPSIGNAL SIGTERM');
  });

  it('the config the image copies loads, and runs its job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-deploy-'));
    const config = join(DEPLOY, 'nightshift.config.js');
    const { stdout } = await run(process.execPath, [CLI, 'jobs', '--json', '--config', config], { cwd: dir, env });
    expect(JSON.parse(stdout).map((j: { name: string }) => j.name)).toEqual(['squares']);
    const ran = await run(process.execPath, [CLI, 'run', 'squares', 'upTo=250', '--json', '--config', config], { cwd: dir, env });
    expect(JSON.parse(ran.stdout)).toMatchObject({ status: 'COMPLETED', steps: [{ writeCount: 250 }] });
  });

  it("the image's command starts a node with that config, which drains and exits 0 on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-deploy-'));
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)![1]) as string[];
    expect(cmd[0]).toBe('node');
    const node = spawn(process.execPath, [CLI, ...cmd, '--name', 'container'], {
      cwd: dir,
      env: { ...env, NIGHTSHIFT_CONFIG: join(DEPLOY, 'nightshift.config.js'), NIGHTSHIFT_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => node.on('close', done));
    let log = '';
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`the node did not start within 20 s: ${log}`)), 20_000);
      node.stderr.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        if (log.includes('"msg":"node container joined"')) {
          clearTimeout(timer);
          ready();
        }
      });
      void exited.then(() => fail(new Error(`the node exited: ${log}`)));
    });
    node.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it("the node's stop timeout ends before the supervisor's SIGKILL, so running work is handed over, not failed over after the lease", () => {
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)![1]) as string[];
    const stopTimeoutMs = Number(cmd[cmd.indexOf('--stop-timeout-ms') + 1]);
    const grace = Number(/docker stop --time (\d+)/.exec(dockerfile)?.[1]) * 1000;
    expect(stopTimeoutMs).toBeGreaterThan(0);
    expect(grace - stopTimeoutMs).toBeGreaterThanOrEqual(5_000);
    expect(dockerfile).toContain(`terminationGracePeriodSeconds: ${grace / 1000}`);
    // The unit keeps the node's default wait (its ExecStart names none): systemd's must be longer.
    const unit = readFileSync(join(DEPLOY, 'nightshift-node.service'), 'utf8');
    expect(unit).not.toMatch(/^ExecStart=.*--stop-timeout-ms/m);
    const node = buildProgram().commands.find((c) => c.name() === 'node')!;
    const defaultMs = Number(node.options.find((opt) => opt.long === '--stop-timeout-ms')!.defaultValue);
    expect(defaultMs).toBeGreaterThan(0);
    expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)![1]) * 1000 - defaultMs).toBeGreaterThanOrEqual(5_000);
  });

  it.skipIf(!existsSync(SYSTEMD_ANALYZE))('the systemd units pass systemd-analyze verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-units-'));
    for (const [file, instance] of [['nightshift-node.service', 'nightshift-node@.service'], ['nightshift-serve.service', 'nightshift-serve.service']]) {
      const unit = readFileSync(join(DEPLOY, file), 'utf8');
      expect(unit).toMatch(/^ExecStart=\/opt\/batch\/node_modules\/\.bin\/nightshift (node|serve) /m);
      expect(unit).toMatch(/^EnvironmentFile=/m);
      expect(unit).not.toMatch(/^ExecStart=.*(postgres:\/\/|TOKENS)/m); // secrets never in argv
      writeFileSync(join(dir, instance), unit.replace('/opt/batch/node_modules/.bin/nightshift', CLI));
      const name = instance.replace('@.', '@a.');
      const { stderr } = await run(SYSTEMD_ANALYZE, ['verify', join(dir, name)], { cwd: dir }).catch((e: { stderr: string }) => ({ stderr: `failed: ${e.stderr}` }));
      expect(stderr, file).toBe('');
      // Hardened: systemd rates the unit's exposure OK (below 4.0; 9.6 is a unit without any).
      const security = await run(SYSTEMD_ANALYZE, ['security', '--offline=true', join(dir, name)], { cwd: dir }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
      const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)?.[1]);
      expect(exposure, `${file}: ${security.stdout.slice(-300)}`).toBeLessThan(4);
    }
  });
});
