import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // In the repository, 'nightshift' (examples and fixtures import it as users do) is the source,
  // as in tsconfig.json's paths; package.json's exports name the build, for users.
  resolve: {
    alias: [
      { find: /^nightshift$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^nightshift\/server$/, replacement: fileURLToPath(new URL('./src/server/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // One temporary folder per run, removed at its end (see test/support/temp-root.ts).
    globalSetup: ['./test/support/temp-root.ts'],
    // Real processes and databases: two files at a time on this 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The skip summary: how many tests were skipped and why; a skip without a reason fails.
    reporters: ['default', './test/support/skip-reporter.ts'],
  },
});
