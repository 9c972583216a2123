/**
 * A scheduler-only process for the cron benchmark: fires the triggers of the example jobs
 * (launching them through the cluster's queue) and runs nothing.
 *
 * Usage: node --import tsx bench/workers/scheduler.ts URL NAME
 */
import { noop } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { startScheduler } from '../../src/scheduler/scheduler.ts';

const [url, name] = process.argv.slice(2);
const scheduler = await startScheduler({ db: url, jobs: [noop], nodeName: name, logger: silentLogger });
process.on('SIGTERM', () => void scheduler.stop().finally(() => process.exit(0)));
process.send!({ ready: true });
