/**
 * Engine conformance: the database refuses to record a job's end for another reason than a lost
 * connection (here a trigger refusing COMPLETED; in production a refused COMMIT or a full
 * disk). The process still owns the execution, so nothing else would end it: it must not stay
 * STARTED. It is recorded FAILED, naming why, and a restart completes the instance.
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { backends } from '../support/backends.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import type { SqlClient } from '../../src/repository/tx.ts';

async function refuseCompleted(db: SqlClient, dialect: 'sqlite' | 'postgres'): Promise<void> {
  if (dialect === 'sqlite') {
    await db.exec(`CREATE TRIGGER refuse_end BEFORE UPDATE OF status ON ns_job_execution
      WHEN NEW.status = 'COMPLETED' BEGIN SELECT RAISE(ABORT, 'the end is refused'); END`);
    return;
  }
  await db.exec(`CREATE FUNCTION refuse_end() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.status = 'COMPLETED' THEN RAISE EXCEPTION 'the end is refused'; END IF; RETURN NEW; END $$`);
  await db.exec('CREATE TRIGGER refuse_end BEFORE UPDATE ON ns_job_execution FOR EACH ROW EXECUTE FUNCTION refuse_end()');
}

describe.each(backends())('a job end the database refuses ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('is recorded FAILED with the reason, not left STARTED, and a restart completes it', async () => {
    const ran: string[] = [];
    const job = defineJob({ name: 'ends', steps: (s) => [s.tasklet({ name: 'work', tasklet: () => void ran.push('work') })] });
    const ns = await pool.create(backend.freshUrl('endrefused'), [job]);
    await refuseCompleted(ns.db, backend.name);

    const first = await ns.run('ends');
    expect(first.status).toBe('FAILED');
    expect(first.exitStatus.description).toMatch(/^recording the end \(COMPLETED\) failed: .*the end is refused/);
    expect(first.steps.map((s) => [s.stepName, s.status])).toEqual([['work', 'COMPLETED']]);
    expect((await ns.getExecution(first.id))!.status).toBe('FAILED');

    await ns.db.exec('DROP TRIGGER refuse_end' + (backend.name === 'postgres' ? ' ON ns_job_execution' : ''));
    const second = await ns.restart(first.id);
    expect(second.status).toBe('COMPLETED');
    expect(ran).toEqual(['work']); // the completed step is not run again
  });
});
