/**
 * Failover time (SPEC section 9, issue 4): 2 `nightshift node` processes; a long `count` job is
 * submitted and, once it runs, its node is SIGKILLed; the time is from the kill to the start of
 * a new execution of the same instance on the survivor (its recorded start time; executions are
 * polled every 10 ms). The killed node is then restarted and the failed-over execution stopped.
 * Repeated at default lease settings and at `--heartbeat-ms 200 --lease-ms 800`.
 */
import { count, noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../src/operator.ts';
import { startNode, type Proc } from './lib/proc.ts';
import { dropSchemas, median, note, schemaName, schemaUrl, secs, sleep, table, until } from './lib/util.ts';

const SETTINGS = [
  { name: 'default', args: [] as string[], target: '<= 5 s', anchor: 'Quartz 2.3.2: 12.6 s median [11.5–19.0]' },
  { name: 'tuned: `--heartbeat-ms 200 --lease-ms 800`', args: ['--heartbeat-ms', '200', '--lease-ms', '800'], target: '<= 1.5 s', anchor: 'Quartz, check-in 1 s: 8.7 s' },
];

const aliveCount = async (ns: Nightshift) => (await ns.nodes()).filter((n) => n.status === 'alive').length;

/** One kill and failover; returns ms from SIGKILL to the new execution's start. */
async function once(ns: Nightshift, url: string, nodes: Map<string, Proc>, args: readonly string[], rep: number): Promise<number> {
  const submitted = await ns.submit('count', { items: 1_000_000, chunk: 10, delayMs: 5, tag: `failover-${rep}` });
  const running = await until('the count job running', async () => {
    const e = await ns.explorer.getExecution(submitted.id);
    return e?.status === 'STARTED' && e.node ? e : undefined;
  }, 30_000);
  await sleep(300); // mid-chunk, with a few checkpoints behind it
  const victim = running.node!;
  const proc = nodes.get(victim)!;
  const killedAt = Date.now();
  proc.child.kill('SIGKILL');
  await proc.exited;
  const next = await until('a new execution of the instance started', async () => {
    const all = await ns.explorer.executionsOfInstance(running.instanceId);
    return all.find((e) => e.id > running.id && e.startTime && e.status !== 'STARTING');
  }, 60_000, 10);
  const ms = next.startTime!.getTime() - killedAt;
  if (next.node === victim) throw new Error(`execution ${next.id} restarted on the killed node ${victim}`);
  // Clean up for the next round: stop the failed-over run, bring the killed node back.
  await ns.stop(next.id).catch(() => undefined);
  nodes.set(victim, startNode(url, victim, args));
  await until('both nodes alive again', async () => (await aliveCount(ns)) === 2, 60_000, 50);
  await until('the failed-over run stopped', async () => (await ns.explorer.getExecution(next.id))?.status === 'STOPPED', 30_000, 50);
  return ms;
}

/** `reps` failovers per setting; Markdown lines. */
export async function benchFailover(reps: number): Promise<string[]> {
  const rows: (string | number)[][] = [];
  for (const setting of SETTINGS) {
    const schema = schemaName('failover');
    const url = schemaUrl(schema);
    const ns = await createNightshift({ db: url, jobs: [noop, count], logger: silentLogger });
    const nodes = new Map(['fo-a', 'fo-b'].map((n) => [n, startNode(url, n, setting.args)]));
    const times: number[] = [];
    try {
      await until('2 nodes alive', async () => (await aliveCount(ns)) === 2, 60_000, 100);
      for (let rep = 1; rep <= reps; rep++) {
        times.push(await once(ns, url, nodes, setting.args, rep));
        note(`failover ${setting.name.split(':')[0]}: #${rep} ${secs(times.at(-1)!)}`);
      }
    } finally {
      await Promise.all([...nodes.values()].map((p) => p.stop()));
      await ns.close();
      await dropSchemas(schema);
    }
    rows.push([setting.name, reps, `**${secs(median(times))}**`, secs(Math.min(...times)), secs(Math.max(...times)), setting.target, setting.anchor]);
  }
  return [
    `## Failover: SIGKILL of the node running a job until it runs again on the other node (2 nodes, ${reps} kills per setting)`,
    '',
    ...table(['setting', 'kills', 'median', 'min', 'max', 'target', 'anchor'], rows),
    '',
    'Time from SIGKILL to the recorded start of the new execution of the same instance on the survivor (same host, same clock). The job is a `count` of 1M items, chunk 10, 5 ms per item, killed about 300 ms after it started.',
  ];
}
