#!/usr/bin/env node
// npm run build: compiles src/ into dist/ with tsc (JavaScript and .d.ts, no maps) and
// copies every file under src/ that is not TypeScript (worker entry points, the loader hooks,
// the console's assets, ...) to the same place in dist/, since runtime code reads them next to
// itself (new URL('./x', import.meta.url)).
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// The example jobs `nightshift demo` runs; they import 'nightshift', i.e. the build above.
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.examples.json')], { stdio: 'inherit' });

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || /\.(m|c)?ts$/.test(entry.name)) continue;
  const from = join(entry.parentPath ?? entry.path, entry.name);
  cpSync(from, join(dist, relative(src, from)));
  copied++;
}
process.stdout.write(`built dist/ (${copied} non-TypeScript files copied from src/)\n`);
