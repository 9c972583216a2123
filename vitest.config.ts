import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
