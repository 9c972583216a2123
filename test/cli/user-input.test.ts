/**
 * What a new user's mistakes meet through the real `nightshift` process: a bad parameter default,
 * a mistyped repository path, a repeated or out-of-range parameter, a Unix cron, a config that does
 * not parse. Each gets exit 2 and one line naming what is wrong and where, and writes nothing.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOneLineError, runCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-user-input-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const job = (params: string) =>
  `import { defineJob, p } from 'nightshift';\n` +
  `export const k = defineJob({ name: 'k', params: { ${params} }, steps: (s) => [s.tasklet({ name: 't', tasklet: () => {} })] });\n`;

describe('CLI user input', () => {
  it('refuses a config whose parameter default does not fit its type, before any execution exists', async () => {
    for (const [name, params, shown] of [
      ['float.mjs', 'n: p.int({ default: 1.5 })', 'n: default must be a whole number \\(a safe integer\\), got 1\\.5'],
      ['text.mjs', "n: p.int({ default: 'x' })", 'n: default must be a whole number \\(a safe integer\\), got "x"'],
      ['date.mjs', "d: p.date({ default: 'notadate' })", 'd: default must be a valid Date .*got "notadate"'],
    ] as const) {
      const config = file(name, job(params));
      const db = join(dir, `${name}.db`);
      const pattern = new RegExp(`^nightshift: config ${config}: job k: parameter ${shown}$`);
      expectOneLineError(await runCli(['jobs', '--config', config]), pattern);
      expectOneLineError(await runCli(['run', 'k', '--config', config, '--db', `sqlite:${db}`]), pattern);
      expect(existsSync(db)).toBe(false);
    }
  });
});
