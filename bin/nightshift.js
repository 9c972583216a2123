#!/usr/bin/env node
// The nightshift command. TypeScript (the CLI itself and users' config files) loads through
// tsx, and `import ... from 'nightshift'` in a config resolves to this very package.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('../src/cli/alias-loader.mjs', import.meta.url);
await import('../src/cli/main.ts');
