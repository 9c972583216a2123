/**
 * Chaos across real `nightshift node` processes on PostgreSQL: 3 nodes, 30 submitted `count`
 * jobs (distinct tags), and a random node SIGKILLed and restarted under the same name every few
 * seconds. At the end every instance is COMPLETED, every item of every tag is written exactly
 * once, every earlier execution FAILED naming its node, and nothing is left running.
 *
 * While the chaos runs, a sampler watches that no execution stays STARTED for an owner that is
 * dead, or whose lease ran out long ago (nobody reaping it).
 *
 * Env: NIGHTSHIFT_CHAOS_SEED (replay a schedule; the seed is printed), NIGHTSHIFT_CHAOS=1 (soak:
 * more jobs, bigger ones, several minutes of kills), NIGHTSHIFT_CHAOS_VERBOSE=1 (print the kill
 * timeline and every execution even when passing).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../support/rng.ts';
import { freshPerTest, openCluster, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from './helpers.ts';
import { checkRun, describeExecutions, describeProcs } from './observe.ts';

const newCluster = freshPerTest(pgBackend(), openCluster);

const SOAK = process.env.NIGHTSHIFT_CHAOS === '1';
const VERBOSE = process.env.NIGHTSHIFT_CHAOS_VERBOSE === '1';
const SEED = Number(process.env.NIGHTSHIFT_CHAOS_SEED ?? Date.now() % 1_000_000);

/**
 * The default run is sized to take about a minute on a 2-core machine: 3 nodes x concurrency 2,
 * each job ~3 s of work (300 items x 10 ms in 15 chunks), so the 30 jobs take ~15 s without
 * faults and the kills (every 2-5 s) land in the middle of running chunks.
 */
const CFG = SOAK
  ? { jobs: 100, items: 600, chunk: 20, delayMs: 10, concurrency: 3, chaosMs: 240_000, killGap: [1500, 5000], settleMs: 120_000 }
  : { jobs: 30, items: 300, chunk: 20, delayMs: 10, concurrency: 2, chaosMs: 45_000, killGap: [2000, 5000], settleMs: 40_000 };
// Every wait below has its own deadline; the test's must outlast them all, so that a run that
// never settles is judged (and its executions printed) rather than cut off by the timeout: the
// chaos and one more kill, two settles, the dead-node wait, the registration wait, the checks.
const TIMEOUT_MS = CFG.chaosMs + 10_000 + 2 * CFG.settleMs + 15_000 + 30_000 + 20_000;
/** Default lease (src/cluster/node-identity.ts): an owner whose lease ran out longer ago than this is a stall. */
const STALL_MS = 8000;

/** A delay of the chaos schedule (not a wait for a condition): cut short once `stop()` holds. */
async function pause(ms: number, stop: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await stop()) return;
    await new Promise((r) => setTimeout(r, Math.min(250, end - Date.now())));
  }
}

interface Kill {
  at: number;
  node: string;
  pid: number;
  /** Executions the killed node owned (STARTED/STOPPING) just before the kill. */
  owned: number[];
  restartAfterMs: number;
}

describe('cluster chaos (postgres, real node processes)', () => {
  it(`3 nodes, ${CFG.jobs} count jobs, a random node SIGKILLed and restarted every ${CFG.killGap[0] / 1000}-${CFG.killGap[1] / 1000} s: all COMPLETED, exactly once`, async () => {
    const rand = seededRandom(SEED);
    console.log(`[chaos] seed=${SEED} (replay with NIGHTSHIFT_CHAOS_SEED=${SEED})${SOAK ? ' soak' : ''} ${JSON.stringify(CFG)}`);
    const { ns, db, url } = await newCluster('chaos');
    const names = ['a', 'b', 'c'];
    const nodeArgs = ['--concurrency', String(CFG.concurrency)];
    const current = new Map<string, NodeProc>();
    const allProcs: NodeProc[] = [];
    const spawnNode = (name: string) => {
      const p = startNode(url, name, { args: nodeArgs });
      current.set(name, p);
      allProcs.push(p);
      return p;
    };
    for (const n of names) spawnNode(n);
    await waitAlive(ns, names);

    const t0 = Date.now();
    const tags = Array.from({ length: CFG.jobs }, (_, i) => `chaos${i}`);
    let submitted = 0;
    const submitNext = async (k: number) => {
      for (let i = 0; i < k && submitted < tags.length; i++, submitted++) {
        await ns.submit('count', { items: CFG.items, chunk: CFG.chunk, delayMs: CFG.delayMs, tag: tags[submitted] });
      }
    };
    // Half now; the rest trickles in during the chaos (some land while a node is down).
    await submitNext(Math.ceil(tags.length / 2));

    const completedCount = async () =>
      Number((await db.query<{ n: number }>(
        `SELECT count(DISTINCT instance_id) AS n FROM ns_job_execution WHERE job_name = 'count' AND status = 'COMPLETED'`,
      ))[0].n);
    const allDone = async () => submitted === tags.length && (await completedCount()) === tags.length;

    // Sampler: an execution running for a dead owner, or for one whose lease ran out long ago.
    const stalls: string[] = [];
    let maxOverdue = 0;
    // Samples that ran (a query error while nodes die is no finding, but a sampler that never
    // succeeds has checked nothing: the counts are asserted below).
    let samples = 0;
    let sampleErrors = 0;
    let lastSampleError: unknown;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const rows = await db.query<{ id: number; status: string; node_name: string; node_status: string; overdue: number }>(
            `SELECT e.id, e.status, e.node_name, n.status AS node_status, ns_now() - n.lease_until AS overdue
             FROM ns_job_execution e JOIN ns_node n ON n.id = e.owner_node_id
             WHERE e.status IN ('STARTED', 'STOPPING')`,
          );
          for (const r of rows) {
            const overdue = Number(r.overdue);
            if (overdue > maxOverdue) maxOverdue = overdue;
            if (r.node_status !== 'alive') stalls.push(`${Date.now() - t0} ms: execution #${r.id} ${r.status} for node ${r.node_name}, which is ${r.node_status}`);
            else if (overdue > STALL_MS) stalls.push(`${Date.now() - t0} ms: execution #${r.id} ${r.status} for node ${r.node_name}, whose lease ran out ${overdue} ms ago and nobody reaped it`);
          }
          samples++;
        } catch (err) {
          sampleErrors++;
          lastSampleError = err;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();

    const kills: Kill[] = [];
    try {
      while (Date.now() - t0 < CFG.chaosMs && !(await allDone())) {
        await pause(rand.int(CFG.killGap[0], CFG.killGap[1]), allDone);
        if (await allDone()) break;
        await submitNext(rand.int(1, 4));
        const name = names[rand.int(0, names.length - 1)];
        const victim = current.get(name)!;
        const owned = (await db.query<{ id: number }>(
          `SELECT e.id FROM ns_job_execution e JOIN ns_node n ON n.id = e.owner_node_id
           WHERE n.pid = $1 AND e.status IN ('STARTED', 'STOPPING') ORDER BY e.id`,
          [victim.pid],
        )).map((r) => Number(r.id));
        const restartAfterMs = rand.int(0, 1500);
        kills.push({ at: Date.now() - t0, node: name, pid: victim.pid, owned, restartAfterMs });
        victim.child.kill('SIGKILL');
        await victim.exited;
        await pause(restartAfterMs, () => false);
        spawnNode(name);
      }
      await submitNext(tags.length);
      const chaosEnd = Date.now() - t0;
      await waitFor(allDone, CFG.settleMs, `all ${tags.length} instances COMPLETED after the chaos`).catch(() => undefined);
      const elapsed = Date.now() - t0;
      // The last victims' leases may still run: let the survivors declare them dead (and fail
      // over anything they held) before judging.
      const killedPids = new Set(kills.map((k) => k.pid));
      await waitFor(async () => (await ns.nodes()).every((n) => !killedPids.has(n.pid) || n.status === 'dead'),
        15_000, 'every killed incarnation declared dead').catch(() => undefined);
      await waitFor(allDone, CFG.settleMs, 'all instances COMPLETED after the last failover').catch(() => undefined);
      // A node restarted just before the end may still be starting (loading its config can take
      // seconds on a busy machine): give each name's current process time to register.
      await waitFor(async () => {
        const registered = await ns.nodes();
        return names.every((n) => registered.some((x) => x.pid === current.get(n)!.pid));
      }, 30_000, 'every current node process registered').catch(() => undefined);
      sampling = false;
      await sampler;

      const { violations, executions } = await checkRun(db, tags, CFG.items);
      const failedOver = executions.filter((e) => e.status === 'FAILED').length;
      const nodes = await ns.nodes();
      // Every name's current process is registered and alive; every killed one was declared dead.
      for (const n of names) {
        const { pid } = current.get(n)!;
        const inc = nodes.find((x) => x.pid === pid);
        if (inc?.status !== 'alive') violations.push(`node ${n}: its current process (pid ${pid}) is ${inc ? inc.status : 'not registered'}`);
      }
      for (const k of kills) {
        const inc = nodes.find((x) => x.pid === k.pid);
        // One killed before it registered has no row: fine.
        if (inc && inc.status !== 'dead') violations.push(`node ${k.node} (pid ${k.pid}) was SIGKILLed but is listed ${inc.status}`);
      }
      violations.push(...stalls);
      const ownedAtKill = kills.reduce((a, k) => a + k.owned.length, 0);
      console.log(
        `[chaos] seed=${SEED}: ${kills.length} kills (${ownedAtKill} running executions killed), ${failedOver} FAILED executions, ` +
          `${executions.length} executions for ${tags.length} instances; chaos ${chaosEnd} ms, all done at ${elapsed} ms; ` +
          `max overdue lease seen ${maxOverdue} ms; ${samples} stall samples (${sampleErrors} failed); ${violations.length} violations`,
      );
      const timeline = kills.map((k) => `  ${k.at} ms: SIGKILL ${k.node} (pid ${k.pid}) owning [${k.owned.join(', ')}], restarted ${k.restartAfterMs} ms later`).join('\n');
      if (violations.length || VERBOSE) {
        console.log(`[chaos] kills:\n${timeline}\n[chaos] executions:\n${describeExecutions(executions)}\n` +
          `[chaos] node processes:\n${describeProcs(allProcs)}`);
      }
      expect(samples, `the stall sampler never succeeded (${sampleErrors} errors, last: ${String(lastSampleError)})`).toBeGreaterThan(0);
      expect(sampleErrors, `most stall samples failed (last: ${String(lastSampleError)})`).toBeLessThan(samples);
      expect(kills.length, 'the chaos killed no node').toBeGreaterThan(0);
      expect(ownedAtKill, 'no kill hit a node while it ran an execution').toBeGreaterThan(0);
      expect(violations, `seed ${SEED}: ${violations.length} violations`).toEqual([]);
    } finally {
      sampling = false;
      await sampler;
    }
  }, TIMEOUT_MS);
});
