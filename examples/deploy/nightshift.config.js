// The jobs the container's nodes run. JavaScript, so a node starts without a TypeScript loader.
import { defineJob, ensureTable, p, rangeReader, sqlWriter } from 'nightshift';

/** Writes the numbers 1..upTo and their squares, in chunks that commit with their checkpoint. */
export const squares = defineJob({
  name: 'squares',
  description: 'Writes the numbers 1..upTo and their squares, in chunks.',
  params: { upTo: p.int({ default: 1000 }) },
  steps: (s) => [
    s.chunk({
      name: 'square',
      chunkSize: 100,
      reader: ({ params }) => rangeReader(1, params.upTo),
      processor: (n) => [n, n * n],
      writer: ({ db }) => ({
        open: () => ensureTable(db, 'CREATE TABLE IF NOT EXISTS squares (n BIGINT, sq BIGINT)'),
        ...sqlWriter({ table: 'squares', columns: ['n', 'sq'], values: (row) => row }),
      }),
    }),
  ],
});

/** Triggers every node adds or updates when it starts. */
export const schedules = [{ name: 'squares-nightly', job: 'squares', cron: '0 0 3 * * ?', tz: 'UTC', params: { upTo: 100000 } }];
