/**
 * The lease sweep that runs before an operator's reads only reads when there is nothing to
 * sweep: on SQLite an UPDATE takes the write lock even when it changes nothing, so a sweep that
 * wrote would make every read wait for whichever process is writing (a node's chunk).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { noop } from '../../examples/nightshift.config.ts';

const dir = mkdtempSync(join(tmpdir(), 'ns-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('reads go on while another process holds the SQLite write lock (sqlite)', async () => {
  const file = join(dir, 'repo.db');
  const ns = await createNightshift({ db: `sqlite:${file}`, jobs: [noop], logger: silentLogger });
  const done = await ns.run('noop');
  // An operator's process of its own (as `serve` would be): its first read sweeps.
  const operator = await createNightshift({ db: `sqlite:${file}`, jobs: [noop], logger: silentLogger });
  // Another process takes the write lock and holds it until told to let go.
  const holder = spawn(process.execPath, ['-e', `
    const db = new (require('better-sqlite3'))(${JSON.stringify(file)});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    process.stdin.on('data', () => { db.exec('COMMIT'); process.exit(0); });
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.on('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
    });
    const t0 = performance.now();
    const read = await operator.getExecution(done.id);
    expect(read?.status).toBe('COMPLETED');
    expect((await operator.listExecutions({})).map((e) => e.id)).toContain(done.id);
    expect(performance.now() - t0).toBeLessThan(2000);
  } finally {
    holder.stdin.write('go\n');
    await new Promise((r) => holder.once('exit', r));
    await operator.close();
    await ns.close();
  }
}, 60_000);
