import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Resolves `nightshift` to this package wherever the importing config file lives, so a config
// outside the package uses the same module instances as the CLI that loads it. This file is
// copied as is into dist/: there the entry is index.js, in the repository's src/ index.ts.
const ext = existsSync(fileURLToPath(new URL('../index.ts', import.meta.url))) ? 'ts' : 'js';
const entries = new Map([
  ['nightshift', new URL(`../index.${ext}`, import.meta.url).href],
  ['nightshift/server', new URL(`../server/index.${ext}`, import.meta.url).href],
]);

export async function resolve(specifier, context, nextResolve) {
  const entry = entries.get(specifier);
  if (entry !== undefined) return { url: entry, shortCircuit: true, format: 'module' };
  return nextResolve(specifier, context);
}

// A config file (and the .ts files it imports) is an ES module even where no package.json says
// "type": "module" (e.g. a nightshift.config.ts in a plain folder): loaded as CommonJS it fails
// ("Cannot require() ES Module ... in a cycle"), and `import ... from 'nightshift'` only
// resolves for ES modules.
// The same goes for a plain nightshift.config.js written with import/export in a folder whose
// package.json does not say "type": "module" (Node 20 would load it as CommonJS).
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && !url.includes('/node_modules/')) {
    const path = fileURLToPath(url);
    if (/\.m?ts$/.test(path) || (path.endsWith('.js') && context.format !== 'module' && ESM_SYNTAX.test(readFileSync(path, 'utf8')))) {
      return nextLoad(url, { ...context, format: 'module' });
    }
  }
  return nextLoad(url, context);
}

const ESM_SYNTAX = /^\s*(import\s*[\w{*'"]|export\s+(default|const|let|var|function|async|class|\{|\*))/m;
