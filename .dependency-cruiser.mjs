// Nightshift's architecture, checked by dependency-cruiser (test/architecture.test.ts and
// `npm run lint`). Layers, lowest first: a module may import its own layer or lower ones,
// never a higher one. Type-only imports count: a type reaching up still couples the layers.
const layers = [
  ['core', 'model, job definitions, params, statuses, errors and the interfaces the layers above implement', '^src/core/'],
  ['repository', 'the database: connections, schema, SQL, LISTEN/NOTIFY', '^src/repository/'],
  ['items', 'readers and writers', '^src/items/'],
  ['tasklets', 'reusable tasklets (system commands)', '^src/tasklets/'],
  ['engine', 'running jobs, steps, chunks and partitions', '^src/engine/'],
  ['scheduler', 'cron triggers and firing', '^src/scheduler/'],
  ['cluster', 'nodes, leases, failover, routing', '^src/cluster/'],
  ['operator', 'createNightshift and its JSON views', '^src/(operator\\.ts|operator/|json\\.ts)'],
  ['server', 'the HTTP API and dashboard', '^src/server/'],
  ['cli', 'the command line', '^src/cli/'],
];

const layerRules = layers.slice(0, -1).map(([name, about, path], i) => ({
  name: `layer-${name}`,
  comment: `${name} (${about}) may import only ${layers.slice(0, i + 1).map(([n]) => n).join(', ')}`,
  severity: 'error',
  from: { path },
  to: { path: layers.slice(i + 1).map(([, , p]) => p) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'modules in src form no import cycle, type-only imports included',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'layer-unknown',
      comment: 'every module under src belongs to a layer (or is src/index.ts, the public entry, or src/require.cjs, its require() form)',
      severity: 'error',
      from: { path: '^src/', pathNot: [...layers.map(([, , p]) => p), '^src/index\\.ts$', '^src/require\\.cjs$'] },
      to: {},
    },
    {
      name: 'entry-not-imported',
      comment: 'src/index.ts is the public entry; modules inside src import what they need directly (src/require.cjs is the entry for require())',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/require\\.cjs$' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'core-no-drivers',
      comment: 'core names Nightshift\'s own types, never a database driver\'s',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^node_modules/(pg|pg-copy-streams|better-sqlite3|@types/(pg|pg-copy-streams|better-sqlite3))/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Count `import type` and type positions (`import('x').T`) as dependencies.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mjs', '.js', '.d.ts'],
    },
  },
};
