/**
 * `npm run bench`: runs the benchmarks and prints ratio tables against baselines measured in the
 * same run. BENCH_ITEMS (default 1,000,000) and BENCH_ROUNDS (default 3) size them.
 */
import { writeFileSync } from 'node:fs';
import { benchChunkOverhead } from './chunk-overhead.ts';

const items = Number(process.env.BENCH_ITEMS ?? 1_000_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

const lines: string[] = [];
const print = (s = '') => {
  console.log(s);
  lines.push(s);
};

print(`## Chunk overhead: count job vs hand-written loop (${items.toLocaleString('en')} items, chunk 1000, median of ${rounds})`);
print();
print('| backend | hand loop | Nightshift | ratio | target |');
print('| --- | --- | --- | --- | --- |');
for (const r of await benchChunkOverhead(items, rounds)) {
  print(`| ${r.backend} | ${(r.handMs / 1000).toFixed(2)} s | ${(r.frameworkMs / 1000).toFixed(2)} s | ${r.ratio.toFixed(3)}x | <= 1.10x |`);
}

if (process.env.BENCH_WRITE !== '0') {
  const header = `# Benchmark results\n\nProduced by \`npm run bench\` (BENCH_ITEMS=${items} BENCH_ROUNDS=${rounds}) on ${new Date().toISOString().slice(0, 10)}, on this project's 2-core machine with PostgreSQL 15 on 127.0.0.1.\n\n`;
  writeFileSync(new URL('./RESULTS.md', import.meta.url), header + lines.join('\n') + '\n');
}
