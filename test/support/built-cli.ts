/**
 * Which code the suite's `nightshift` processes run. In the repository, bin/nightshift.js runs
 * src/ through tsx, which compiles the CLI's modules again in every process (about a second of
 * CPU each, and the suite starts hundreds). `npm test` builds dist/ first, so while dist/ is newer
 * than every file under src/ the processes run the build (NIGHTSHIFT_DIST=1), as an installed
 * package does; after an edit to src/ without a build they run the source, so a test never runs
 * stale code.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The newest modification time of any file under `dir`. */
function newestUnder(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function builtIsCurrent(): boolean {
  try {
    return statSync(join(ROOT, 'dist', 'cli', 'main.js')).mtimeMs > newestUnder(join(ROOT, 'src'));
  } catch {
    return false; // not built
  }
}

let current: boolean | undefined;

/** The environment that makes a `nightshift` process run dist/ when it is current (else nothing). */
export function builtCliEnv(): Record<string, string> {
  current ??= builtIsCurrent();
  return current ? { NIGHTSHIFT_DIST: '1' } : {};
}
