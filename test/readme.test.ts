/**
 * The README's examples, run as written: the quick-start config and commands, the example-job
 * commands, the API snippet and the cron commands. (The cluster and scheduler sections run in
 * test/cluster and test/scheduler.)
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PG_BASE } from './support/backends.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin/nightshift.js');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const run = promisify(execFile);
/** Node flags that run a TypeScript file with 'nightshift' resolving to the source (scripts/dev-alias.mjs). */
const TSX_FROM_SOURCE = ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, '--import', pathToFileURL(join(ROOT, 'scripts/dev-alias.mjs')).href];

/** Polls `check` until it holds (errors count as not yet), or fails naming `what` after 20 s. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The fenced code blocks of a language that contain `marker`. */
function blocks(lang: string, marker: string): string[] {
  return [...README.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]).filter((b) => b.includes(marker));
}

/** Runs one README command line (`npx nightshift ...`) with the real bin, returning its exit code. */
async function sh(line: string, cwd: string): Promise<{ code: number; stdout: string }> {
  const command = line.replace(/\s+#.*$/, '').trim();
  const words = [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
  expect(words.slice(0, 2)).toEqual(['npx', 'nightshift']);
  try {
    const { stdout } = await run(process.execPath, [BIN, ...words.slice(2)], { cwd, env: { ...process.env, NIGHTSHIFT_DB: undefined, NIGHTSHIFT_CONFIG: undefined } });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

/** Runs a README script as a module (`nightshift` resolving to this checkout) in a fresh folder; returns its stdout. */
async function runScript(snippet: string, file: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
  writeFileSync(join(dir, file), snippet.replaceAll("from 'nightshift'", `from '${ROOT}/src/index.ts'`));
  const { stdout } = await run(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(dir, file)], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
  return stdout;
}

describe('README examples', () => {
  it('the top of the README shows the demo and test commands', () => {
    expect(README).toContain('npm ci && npx nightshift demo');
    expect(blocks('sh', 'npm test')).toHaveLength(1);
  });

  it('the contents list every section in order, and every link to a heading finds it', () => {
    const prose = README.replace(/```[\s\S]*?```/g, '');
    const slug = (title: string) => title.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replaceAll(' ', '-');
    const headings = [...prose.matchAll(/^(#{2,4}) (.+)$/gm)].map((m) => ({ level: m[1].length, title: m[2] }));
    const contents = /^## Contents\n\n((?:- .+\n)+)/m.exec(prose)![1];
    const listed = [...contents.matchAll(/\[([^\]]+)\]\(#([^)]+)\)/g)].map((m) => [m[1], m[2]]);
    const sections = headings.filter((h) => (h.level === 2 || h.level === 3) && h.title !== 'Contents');
    expect(listed).toEqual(sections.map((h) => [h.title, slug(h.title)]));
    const anchors = new Set(headings.map((h) => slug(h.title)));
    const links = [...prose.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.filter((l) => !anchors.has(l))).toEqual([]);
  });

  it('the installing example in JavaScript prints what its comment says', async () => {
    const [snippet] = blocks('js', '// app.mjs');
    const expected = /console\.log\(.*\); \/\/ (.+)/.exec(snippet)![1];
    expect((await runScript(snippet, 'app.mjs')).trim()).toBe(expected);
  });

  describe('the installing example in TypeScript (src/jobs.ts, src/main.ts, nightshift.config.ts)', () => {
    /** A fresh project folder with the three files as the README shows them, and 'nightshift' (this checkout) and @types in node_modules. */
    function project(): { dir: string; files: Record<string, string> } {
      const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
      const files: Record<string, string> = {};
      for (const file of ['src/jobs.ts', 'src/main.ts', 'src/server.ts', 'nightshift.config.ts', 'test/labels.test.ts']) {
        const [snippet] = blocks('ts', `// ${file}:`);
        expect(snippet, file).toBeDefined();
        files[file] = snippet;
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), snippet);
      }
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(ROOT, join(dir, 'node_modules/nightshift'));
      symlinkSync(join(ROOT, 'node_modules/@types'), join(dir, 'node_modules/@types'));
      // What src/server.ts (an HTTP service running a node) imports besides Nightshift.
      for (const dep of ['fastify', 'pino', 'prom-client']) symlinkSync(join(ROOT, 'node_modules', dep), join(dir, 'node_modules', dep));
      return { dir, files };
    }
    const tsc = (dir: string, compilerOptions: Record<string, unknown>) => {
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        // noUncheckedIndexedAccess: `tsc --init` turns it on, so the example must hold under it;
        // exactOptionalPropertyTypes too (a service passes process.env values to options).
        compilerOptions: { strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', skipLibCheck: false, types: ['node'], ...compilerOptions },
        include: ['src', 'nightshift.config.ts'],
      }));
      return run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
    };

    it('src/main.ts prints what the comments say, and the CLI runs the job from nightshift.config.ts', async () => {
      const { dir, files } = project();
      const printed = / \/\/ (n1=.+)$/m.exec(files['src/jobs.ts'])![1];
      const status = /console\.log\(.*\); \/\/ (.+)/.exec(files['src/main.ts'])![1];
      const { stdout } = await run(process.execPath, [...TSX_FROM_SOURCE, join(dir, 'src/main.ts')], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
      expect(stdout.trim().split('\n')).toEqual([printed, status]);
      const [line, list] = blocks('sh', 'run labels')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
      const cli = await sh(line, dir);
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain(/prints (.+)$/.exec(line)![1]);
      // src/main.ts wrote to the CLI's default repository, so the CLI lists its run beside its own.
      const listed = await sh(list, dir);
      expect(listed.code).toBe(0);
      expect(listed.stdout.split('\n').filter((l) => /\blabels\b.*COMPLETED/.test(l))).toHaveLength(2);
      // The block's way to run src/main.ts says what it prints.
      const tsxLine = blocks('sh', 'run labels')[0].split('\n').find((l) => l.startsWith('npx tsx src/main.ts'));
      expect(tsxLine).toContain(`# ${status} `);
      // Both run next instances, so src/main.ts runs again after the CLI.
      const again = await run(process.execPath, [...TSX_FROM_SOURCE, join(dir, 'src/main.ts')], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
      expect(again.stdout.trim().split('\n')).toEqual([printed, status]);
    });

    it("the job's test passes as the README runs it, and fails when the job writes less", async () => {
      const { dir, files } = project();
      const test = (cwd: string) => run(process.execPath, [...TSX_FROM_SOURCE, '--test', 'test/labels.test.ts'], { cwd, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
      expect(/`node --import tsx --test (\S+)`/.exec(files['test/labels.test.ts'])?.[1]).toBe('test/labels.test.ts');
      expect((await test(dir)).stdout).toMatch(/^# pass 1$/m);
      writeFileSync(join(dir, 'src/jobs.ts'), files['src/jobs.ts'].replace('rangeReader(1, params.upTo)', 'rangeReader(1, params.upTo - 1)'));
      await expect(test(dir)).rejects.toMatchObject({ stdout: expect.stringMatching(/^# fail 1$/m) });
    });

    it('compiles with tsc under NodeNext as shown; a .ts specifier needs allowImportingTsExtensions and noEmit', { timeout: 120_000 }, async () => {
      const { dir, files } = project();
      expect(await tsc(dir, { outDir: 'out' })).toEqual({ code: 0, out: '' });
      expect(existsSync(join(dir, 'out/src/main.js'))).toBe(true);
      // The same config naming the .ts file: TS5097 unless the project only type-checks.
      writeFileSync(join(dir, 'nightshift.config.ts'), files['nightshift.config.ts'].replace("'./src/jobs.js'", "'./src/jobs.ts'"));
      expect((await tsc(dir, { noEmit: true })).out).toContain('error TS5097');
      expect(await tsc(dir, { noEmit: true, allowImportingTsExtensions: true })).toEqual({ code: 0, out: '' });
    });
    it('src/server.ts runs a node in an HTTP service: submits and reports over its routes, one /metrics, probes, and a clean SIGTERM', { timeout: 60_000 }, async () => {
      const { dir } = project();
      const schema = `nst_readme_server_${process.pid}`;
      const port = 20_000 + (process.pid % 20_000);
      const child = spawn(process.execPath, [...TSX_FROM_SOURCE, join(dir, 'src/server.ts')], {
        cwd: dir,
        env: { ...process.env, NIGHTSHIFT_DB: `${PG_BASE}?schema=${schema}`, PORT: String(port), NIGHTSHIFT_API_TOKENS: 'ops:viewer:readme-server-test-token-0123' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // Also when the test times out: no process and no schema left behind.
      onTestFinished(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        const client = new pg.Client({ connectionString: PG_BASE });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
      });
      const url = (path: string) => `http://127.0.0.1:${port}${path}`;
      try {
        await until(async () => (await fetch(url('/readyz'))).status === 200, 'the service ready');
        const bad = await fetch(url('/labels'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ upTo: 'many' }) });
        expect([bad.status, ((await bad.json()) as { error: string }).error]).toEqual([400, 'job labels: parameter upTo must be an integer, got "many"']);
        const submitted = await fetch(url('/labels'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ upTo: 3 }) });
        expect(submitted.status).toBe(202);
        const { id } = (await submitted.json()) as { id: number };
        await until(async () => ((await (await fetch(url(`/labels/${id}`))).json()) as { status: string }).status === 'COMPLETED', 'the job to complete');
        expect(await (await fetch(url(`/labels/${id}`))).json()).toEqual({ status: 'COMPLETED', written: 3 });
        // The node's execution events, in the service's log.
        await until(async () => out.includes('"msg":"execution ended here"'), 'the execution ended event');
        const logged = (msg: string) => out.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(logged('execution started')).toEqual([expect.objectContaining({ execution: id, job: 'labels', params: expect.objectContaining({ upTo: 3 }) })]);
        expect(logged('execution ended here')).toEqual([expect.objectContaining({ execution: id, job: 'labels', status: 'COMPLETED', ending: 'ended' })]);
        const metrics = await (await fetch(url('/metrics'))).text();
        expect(metrics).toContain('nightshift_executions{job="labels",status="COMPLETED"} 1\n');
        expect(metrics.match(/^# TYPE process_cpu_user_seconds_total/gm)).toHaveLength(1);
        expect(await (await fetch(url('/livez'))).json()).toMatchObject({ state: 'running', ready: true });
        // The console and its API under /batch, the API with its token.
        const auth = { authorization: 'Bearer readme-server-test-token-0123' };
        expect((await fetch(url(`/batch/api/executions/${id}`))).status).toBe(401);
        expect(await (await fetch(url(`/batch/api/executions/${id}`), { headers: auth })).json()).toMatchObject({ id, jobName: 'labels', status: 'COMPLETED' });
        const redirect = await fetch(url('/batch'), { redirect: 'manual' });
        expect([redirect.status, redirect.headers.get('location')]).toEqual([308, '/batch/']);
        const html = await (await fetch(url('/batch/'))).text();
        expect(html).toContain('src="assets/app.js"');
        expect((await fetch(url('/batch/assets/app.js'))).status).toBe(200);
        expect((await fetch(url('/batch/healthz'))).status).toBe(200);
        // A console's event stream open at SIGTERM does not hold the shutdown.
        const events = await fetch(url('/batch/api/events'), { headers: auth });
        expect(events.status).toBe(200);
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        await events.body?.cancel().catch(() => undefined);
        expect(out).toContain('"msg":"stopped"');
      } catch (err) {
        throw new Error(`${String(err)}\n--- src/server.ts ---\n${out}`);
      }
    });
  });

  it('the listeners example calls its listeners as the README shows', async () => {
    const [snippet] = blocks('ts', "name: 'audited'");
    const [shown] = blocks('text', 'beforeJob #1');
    expect(snippet).toBeDefined();
    for (const method of ['beforeJob', 'afterJob', 'beforeStep', 'afterStep', 'beforeChunk', 'afterChunk', 'onChunkError', 'afterRead', 'onReadError', 'afterProcess', 'onProcessError', 'beforeWrite', 'afterWrite', 'onWriteError', 'onSkip', 'onRetry']) {
      expect(snippet).toContain(`${method}:`);
    }
    expect((await runScript(snippet, 'audited.mts')).trim()).toBe(shown.trim());
  });

  it('the external-writes example runs as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [line] = blocks('sh', 'run sync-orders')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    expect((await sh(line.replace('examples/', `${ROOT}/examples/`), dir)).code).toBe(0);
    expect(JSON.parse((await sh(`npx nightshift execution 1 --json --config ${ROOT}/examples/external-writes/nightshift.config.ts`, dir)).stdout)).toMatchObject({ status: 'COMPLETED' });
  });

  it('the other-database example reads every row from PostgreSQL into an SQLite repository', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [config] = blocks('ts', '// the source is another database');
    writeFileSync(join(dir, 'nightshift.config.ts'), config);
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules')); // its `import pg from 'pg'`
    const schema = `nst_readme_sales_${process.pid}`;
    const admin = new pg.Client({ connectionString: PG_BASE });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`CREATE TABLE ${schema}.orders (id BIGINT PRIMARY KEY, amount NUMERIC NOT NULL)`);
      await admin.query(`INSERT INTO ${schema}.orders SELECT n, n * 1.5 FROM generate_series(1, 2500) n`);
      const sales = new URL(PG_BASE);
      sales.searchParams.set('options', `-c search_path=${schema}`);
      const repository = join(dir, 'repo.db');
      const env = { ...process.env, NIGHTSHIFT_DB: undefined, NIGHTSHIFT_CONFIG: undefined, SALES_DB: sales.href };
      const { stdout } = await run(process.execPath, [BIN, 'run', 'import-orders', '--db', `sqlite:${repository}`, '--json'], { cwd: dir, env });
      expect(JSON.parse(stdout)).toMatchObject({ status: 'COMPLETED', steps: [{ readCount: 2500, writeCount: 2500 }] });
      const written = new Database(repository, { readonly: true });
      try {
        expect(written.prepare('SELECT count(DISTINCT id) AS n, min(id) AS lo, max(id) AS hi FROM orders').get()).toEqual({ n: 2500, lo: 1, hi: 2500 });
        expect(written.prepare('SELECT amount FROM orders WHERE id = 7').get()).toEqual({ amount: '10.5' });
      } finally {
        written.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });

  it('the quick start runs as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [config] = blocks('ts', "name: 'squares'");
    writeFileSync(join(dir, 'nightshift.config.ts'), config);
    const [commands] = blocks('sh', 'run squares');
    const lines = commands.split('\n').filter((l) => l.startsWith('npx nightshift'));
    const results = [];
    for (const line of lines) results.push(await sh(line, dir));
    expect(results.map((r) => r.code)).toEqual(lines.map(() => 0));
    const execution = JSON.parse(results.at(-1)!.stdout);
    expect(execution).toMatchObject({ jobName: 'squares', status: 'COMPLETED', parameters: { upTo: 1000 } });
    // 20 chunks of 50, and the commit that finds the end of input.
    expect(execution.steps[0]).toMatchObject({ readCount: 1000, writeCount: 1000, commitCount: 21 });
  });

  it('the business-date example makes one instance per date, whether a firing or a run makes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    writeFileSync(join(dir, 'nightshift.config.ts'), blocks('ts', "name: 'settle'")[0]);
    const lines = blocks('sh', 'run settle')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    const codes = [];
    for (const line of lines) codes.push((await sh(line, dir)).code);
    expect(codes).toEqual([0, 0]);
    const fired = await sh('npx nightshift schedule trigger settle-nightly', dir);
    expect(fired.code).toBe(0);
    const execution = JSON.parse((await sh(`npx nightshift execution ${fired.stdout.trim().match(/\d+/)![0]} --json`, dir)).stdout);
    const yesterdayInParis = new Date(new Date(execution.parameters.fireTime).toLocaleString('en-US', { timeZone: 'Europe/Paris' }));
    yesterdayInParis.setDate(yesterdayInParis.getDate() - 1);
    const day = `${yesterdayInParis.getFullYear()}-${String(yesterdayInParis.getMonth() + 1).padStart(2, '0')}-${String(yesterdayInParis.getDate()).padStart(2, '0')}`;
    expect(execution.parameters).toMatchObject({ businessDate: `${day}T00:00:00.000Z`, region: 'eu' });
    // The date run by hand is one instance: run again, it is refused as completed.
    const again = await sh('npx nightshift run settle businessDate=2027-01-14', dir);
    expect(again.code).toBe(2);
  });

  it('the example-job commands end as their comments say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [commands] = blocks('sh', 'run count items=5000');
    const lines = commands.split('\n').filter((l) => l.startsWith('npx nightshift'));
    const codes = [];
    for (const line of lines) codes.push((await sh(line.replace('examples/', `${ROOT}/examples/`), dir)).code);
    expect(codes).toEqual(lines.map((l) => (l.includes('exit 1') ? 1 : 0)));
    const restarted = await sh(`npx nightshift execution 3 --json --config ${ROOT}/examples/nightshift.config.ts`, dir);
    expect(JSON.parse(restarted.stdout).steps[0]).toMatchObject({ status: 'COMPLETED', readCount: 3800 }); // from item 1201
  });

  it('the API example prints what its comment says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const snippet = blocks('ts', 'createNightshift').find((b) => b.includes('./examples/nightshift.config.ts'))!;
    const script = snippet
      .replace("from 'nightshift'", `from '${ROOT}/src/index.ts'`)
      .replace("from './examples/nightshift.config.ts'", `from '${ROOT}/examples/nightshift.config.ts'`);
    writeFileSync(join(dir, 'api.mts'), script);
    const { stdout } = await run(process.execPath, [...TSX_FROM_SOURCE, join(dir, 'api.mts')], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
    const expected = /console\.log\(.*\); \/\/ (\d+)/.exec(snippet)![1];
    expect(stdout.trim()).toBe(expected);
  });

  it('the bulk submit examples answer as their comments say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [commands] = blocks('sh', 'submit-many');
    const [printf, line] = commands.trim().split('\n');
    await run('bash', ['-c', printf], { cwd: dir });
    const r = await sh(line.replace('examples/', `${ROOT}/examples/`), dir);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(/# (.+)$/.exec(line)![1]);
    const [snippet] = blocks('ts', 'submitMany(');
    const script = snippet
      .replace("from 'nightshift'", `from '${ROOT}/src/index.ts'`)
      .replace("from './examples/nightshift.config.ts'", `from '${ROOT}/examples/nightshift.config.ts'`);
    writeFileSync(join(dir, 'bulk.mts'), script);
    const { stdout } = await run(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(dir, 'bulk.mts')], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
    expect(stdout.trim()).toBe(/\/\/ (\[.+)$/m.exec(snippet)![1]);
  });

  it('the concurrent processing example prints what its comment says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [snippet] = blocks('ts', 'processConcurrency:');
    writeFileSync(join(dir, 'enrich.mts'), snippet.replace("from 'nightshift'", `from '${ROOT}/src/index.ts'`));
    const { stdout, stderr } = await run(process.execPath, [...TSX_FROM_SOURCE, join(dir, 'enrich.mts')], { cwd: dir, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
    const expected = /console\.log\(.*\); \/\/ (.+)/.exec(snippet)![1];
    expect(stdout.trim()).toBe(expected);
    // The retry listener gave up on each unknown customer (id 7 succeeded on its retry).
    expect(stderr.trim().split('\n')).toEqual([250, 500, 750, 1000].map((id) => `giving up on ${id}: Error: no customer ${id}`));
  });

  it('the HTTP API example answers as its comments say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    const [commands] = blocks('sh', 'nightshift serve');
    const serveLine = commands.split('\n').find((l) => l.startsWith('npx nightshift serve'))!;
    const args = serveLine.replace(/\s*&$/, '').split(/\s+/).slice(2).map((w) => (w === '8080' ? '0' : w.replace('examples/', `${ROOT}/examples/`)));
    // The tokens the block exports.
    const tokens = /^export NIGHTSHIFT_API_TOKENS='([^']+)'$/m.exec(commands)![1];
    const env = { ...process.env, NIGHTSHIFT_DB: undefined, NIGHTSHIFT_CONFIG: undefined, NIGHTSHIFT_API_TOKENS: tokens };
    const server = spawn(process.execPath, [BIN, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((done) => server.on('close', done));
    try {
      const base = await new Promise<string>((found, fail) => {
        let out = '';
        server.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const m = /listening on http:\/\/(\S+)/.exec(out);
          if (m) found(m[1]);
        });
        void exited.then(() => fail(new Error(`serve exited before listening: ${out}`)));
      });
      const curls = commands.replace(/\\\n\s*/g, '').split('\n').filter((l) => l.startsWith('curl'));
      const outputs = [];
      for (const line of curls) {
        const { stdout } = await run('sh', ['-c', line.replace(/\s+#.*$/, '').replaceAll('localhost:8080', base)]);
        outputs.push(stdout);
      }
      expect(JSON.parse(outputs[0])).toEqual([]);
      expect(JSON.parse(outputs[1])).toMatchObject({ jobName: 'count', status: 'STARTING', parameters: { items: 5000 } });
      expect(JSON.parse(outputs[2])).toMatchObject({ jobName: 'count', status: 'STARTING', parameters: { items: 5000, 'run.id': 1 } });
      expect(JSON.parse(outputs[3])).toMatchObject({ id: 1, status: 'STOPPED' });
      const metrics = outputs[4];
      expect(metrics).toContain('nightshift_executions{job="count",status="STARTING"} 1');
      // The counter of ends has each ended status of the job at 0 before any end.
      expect(metrics).toContain('nightshift_executions_ended_total{job="count",status="FAILED"} 0');
      // The README's /metrics row names exactly the metrics served, each with its type.
      const row = README.split('\n').find((l) => l.startsWith('| `GET /metrics` |'))!;
      const listed = [...new Set([...row.matchAll(/`(nightshift_\w+)/g)].map((m) => m[1]))].sort();
      const served = [...metrics.matchAll(/^# TYPE (nightshift_\w+) (\w+)$/gm)].map((m) => [m[1], m[2]]).sort();
      expect(listed).toEqual(served.map(([name]) => name));
      // A counter ends in _total (Prometheus naming), and only a counter does.
      for (const [name, type] of served) expect(name.endsWith('_total'), name).toBe(type === 'counter');
    } finally {
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('the job-step example runs the child job once per region', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    writeFileSync(join(dir, 'nightshift.config.ts'), blocks('ts', 'defineFlow(')[0]);
    const lines = blocks('sh', 'run all-regions')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    for (const line of lines) expect((await sh(line, dir)).code).toBe(0);
    const children = JSON.parse((await sh('npx nightshift executions --job load-region --json', dir)).stdout);
    expect(children.map((e: { parameters: { region: string }; status: string }) => [e.parameters.region, e.status]).sort()).toEqual([['eu', 'COMPLETED'], ['us', 'COMPLETED']]);
    const parent = JSON.parse((await sh('npx nightshift execution 1 --json', dir)).stdout);
    expect(parent).toMatchObject({ jobName: 'all-regions', status: 'COMPLETED' });
    expect(parent.steps.map((s: { name: string }) => s.name).sort()).toEqual(['load-eu', 'load-us', 'report']);
  });

  it('the parameters example increments and validates as its comments say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    writeFileSync(join(dir, 'nightshift.config.ts'), blocks('ts', 'incrementer:')[0]);
    const lines = blocks('sh', 'run daily --next')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    const results = [];
    for (const line of lines) results.push(await sh(line, dir));
    expect(results.map((r) => r.code)).toEqual(lines.map((l) => Number(/# exit (\d+)/.exec(l)?.[1] ?? 0)));
    const [first, second] = await Promise.all([1, 2].map(async (id) => JSON.parse((await sh(`npx nightshift execution ${id} --json`, dir)).stdout)));
    expect(first.parameters).toEqual({ day: '2024-01-01T00:00:00.000Z', from: 0, to: 24 });
    expect(second.parameters).toEqual({ day: '2024-01-02T00:00:00.000Z', from: 0, to: 12 });
    expect((await sh('npx nightshift execution 3', dir)).code).toBe(2); // the refused launch wrote nothing
  });

  it('the tasklet example runs a command and exits as its comments say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    writeFileSync(join(dir, 'nightshift.config.ts'), blocks('ts', 'commandTasklet(')[0]);
    const lines = blocks('sh', 'run nightly day=holiday')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    const codes = [];
    for (const line of lines) codes.push((await sh(line, dir)).code);
    expect(codes).toEqual(lines.map((l) => Number(/\(exit (\d+)\)/.exec(l)?.[1] ?? 0)));
    const [published, holiday] = await Promise.all([1, 2].map(async (id) => JSON.parse((await sh(`npx nightshift execution ${id} --json`, dir)).stdout)));
    expect(published.steps.map((s: { name: string }) => s.name)).toEqual(['export', 'publish']);
    expect(holiday).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'NOOP' }, steps: [{ name: 'export', exitStatus: { code: 'NOOP' } }] });
  });

  it("the maxRunning example refuses a second run while the first runs, queues a submit, and lists the limit", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    writeFileSync(join(dir, 'nightshift.config.ts'), blocks('ts', 'maxRunning: 1,')[0]);
    const [background, ...lines] = blocks('sh', 'run etl day=')[0].split('\n').filter((l) => l.startsWith('npx nightshift'));
    const words = background.replace(/&\s+#.*$/, '').trim().split(/\s+/).slice(2);
    const first = spawn(process.execPath, [BIN, ...words], { cwd: dir, env: { ...process.env, NIGHTSHIFT_DB: undefined, NIGHTSHIFT_CONFIG: undefined }, stdio: 'ignore' });
    const firstEnded = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    onTestFinished(() => void first.kill('SIGKILL'));
    await until(async () => JSON.parse((await sh('npx nightshift execution 1 --json', dir)).stdout).status === 'STARTED', 'execution 1 running');
    const results = [];
    for (const line of lines) results.push({ line, ...(await sh(line, dir)) });
    expect(results.map((r) => r.code)).toEqual(lines.map((l) => Number(/# exit (\d+)/.exec(l)?.[1] ?? 0)));
    const jobs = JSON.parse(results.find((r) => r.line.includes('jobs --json'))!.stdout);
    expect(jobs).toMatchObject([{ name: 'etl', restartable: true, maxRunning: 1 }]);
    // Nothing was written for the refused run; the submit is queued behind execution 1.
    expect((await firstEnded)).toBe(0);
    const all = JSON.parse((await sh('npx nightshift executions --json', dir)).stdout);
    expect(all.map((e: { id: number; status: string }) => [e.id, e.status])).toEqual([[2, 'STARTING'], [1, 'COMPLETED']]);
  });

  it("the scheduler's one-shot and bounded examples add and list those triggers, and its declared schedules pass a node's checks", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-readme-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const [declared] = blocks('ts', "at: '2099-01-15T10:00:00Z'");
    writeFileSync(join(dir, 'nightshift.config.ts'), `export { default } from ${JSON.stringify(join(ROOT, 'examples/nightshift.config.ts'))};\n${declared}`);
    const checked = await sh('npx nightshift jobs --json', dir);
    expect(checked.code).toBe(0);
    const [commands] = blocks('sh', 'schedule add launch');
    for (const line of commands.split('\n').filter((l) => l.startsWith('npx nightshift schedule add'))) expect((await sh(line, dir)).code, line).toBe(0);
    const list = JSON.parse((await sh('npx nightshift schedule list --json', dir)).stdout) as Record<string, unknown>[];
    expect(list).toMatchObject([
      { name: 'campaign', everyMs: 3600_000, at: null, startAt: '2099-01-01T00:00:00.000Z', endAt: '2099-01-31T22:00:00.000Z', nextFireTime: '2099-01-01T00:00:00.000Z' },
      { name: 'launch', at: '2099-01-15T10:00:00.000Z', nextFireTime: '2099-01-15T10:00:00.000Z' },
    ]);
    const text = (await sh('npx nightshift schedule list', dir)).stdout;
    expect(text).toMatch(/launch\s+noop\s+once at 2099-01-15T10:00:00\.000Z/);
    expect(text).toMatch(/campaign\s+count\s+every 1h from 2099-01-01T00:00:00\.000Z until 2099-01-31T22:00:00\.000Z/);
  });

  it('the cron examples print fire times', async () => {
    const [commands] = blocks('sh', 'nightshift cron');
    for (const line of commands.split('\n').filter((l) => l.startsWith('npx nightshift cron'))) {
      const r = await sh(line, ROOT);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
    }
  });
});
