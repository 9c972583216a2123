/**
 * The API reference (`npm run docs`): TypeDoc builds it from the TSDoc of the public entry points
 * (src/index.ts, and src/server/index.ts for nightshift/server), and its validation (typedoc.json: notDocumented, notExported, invalidLink,
 * treated as errors) fails the build when an exported symbol, or a method or property of one, has no
 * documentation, or when the API names a type that is not exported.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

describe('API reference', () => {
  it('builds from the TSDoc with every exported symbol documented', { timeout: 180_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightshift-docs-'));
    const typedoc = join(ROOT, 'node_modules/typedoc/bin/typedoc');
    const result = await run(process.execPath, [typedoc, '--out', out, '--logLevel', 'Warn'], { cwd: ROOT }).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    const output = `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
    expect(output).not.toMatch(/\[(warning|error)\]/);
    expect('code' in result ? result.code : 0).toBe(0);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    expect(readFileSync(join(out, 'functions/index.defineJob.html'), 'utf8')).toContain('Defines a job');
    expect(existsSync(join(out, 'interfaces/index.ChunkListener.html'))).toBe(true);
    // The nightshift/server subpath has its own module in the reference.
    expect(readFileSync(join(out, 'functions/server.createHttpApi.html'), 'utf8')).toContain('createHttpApi');
  });

  it('npm run docs writes into a folder git ignores', () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'typedoc.json'), 'utf8')) as { out: string; entryPoints: string[] };
    expect(config.entryPoints).toEqual(['src/index.ts', 'src/server/index.ts']);
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain(`${config.out}/`);
  });
});
