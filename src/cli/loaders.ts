import { register } from 'node:module';

/** Set by bin/nightshift.js when it already registered tsx (running the CLI from src/). */
const TSX_REGISTERED = Symbol.for('nightshift.tsx-registered');
const ALIAS_REGISTERED = Symbol.for('nightshift.alias-registered');
type Flags = Record<symbol, boolean | undefined>;

/**
 * Prepares Node to import a user's module (a config file, or the example jobs): `import ... from
 * 'nightshift'` resolves to this very package wherever the file lives, and TypeScript loads
 * through tsx. Both load only here, on the first module that needs them, so commands that need
 * no config (and `--version`) start without them.
 */
export async function prepareImport(file: string): Promise<void> {
  const flags = globalThis as unknown as Flags;
  // tsx first: hooks run last-registered first, and the alias hook must see a .ts config before
  // tsx does (it makes it an ES module wherever it lives).
  if (/\.[cm]?tsx?$/.test(file) && !flags[TSX_REGISTERED]) {
    const { register: registerTsx } = await import('tsx/esm/api');
    registerTsx();
    flags[TSX_REGISTERED] = true;
  }
  if (!flags[ALIAS_REGISTERED]) {
    register('./alias-loader.mjs', import.meta.url);
    flags[ALIAS_REGISTERED] = true;
  }
}
