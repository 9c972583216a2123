// `node --import ./scripts/dev-alias.mjs`: in the repository, `import ... from 'nightshift'` (the
// examples and fixtures import it as users do) resolves to the source, not to the build that
// package.json's exports name, so one process never holds two copies of Nightshift.
import { register } from 'node:module';

register('../src/cli/alias-loader.mjs', import.meta.url);
