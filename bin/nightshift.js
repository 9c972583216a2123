#!/usr/bin/env node
// The nightshift command. Installed, it runs the compiled CLI (dist/); tsx loads later and only
// for a TypeScript config. In the repository (src/ present, no dist/ needed) it runs the source
// through tsx, so the tests and `npx nightshift` there always run the current code.
import { existsSync } from 'node:fs';

if (existsSync(new URL('../src/cli/main.ts', import.meta.url)) && !process.env.NIGHTSHIFT_DIST) {
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[Symbol.for('nightshift.tsx-registered')] = true;
  await import('../src/cli/main.ts');
} else {
  await import('../dist/cli/main.js');
}
