import type { Database } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';
import { failOrphan } from '../engine/launch.ts';

export interface FailedOver {
  node: string;
  failedExecutionId: number;
  /** The queued execution that resumes the instance from its last checkpoint, if any. */
  newExecutionId: number | null;
}

/**
 * Declares dead every node whose lease ran out by the database's clock. Each declaration
 * happens once in the whole cluster (the UPDATE's WHERE lets one caller win) and, in the same
 * transaction, fails the node's running executions naming the node and queues their restart,
 * so a failover can neither be lost nor happen twice. Executions of plain processes
 * (`nightshift run`) are failed but not requeued: their owner restarts them.
 */
export async function reapDeadNodes(db: Database): Promise<{ dead: string[]; failedOver: FailedOver[] }> {
  const expired = await db.query<{ id: number; name: string; kind: string }>(SQL.expiredNodes);
  const dead: string[] = [];
  const failedOver: FailedOver[] = [];
  for (const node of expired) {
    await db.transaction(async (tx) => {
      // A dead owner paused inside a transaction may still hold the row; try again next round.
      if (db.dialect === 'postgres') await tx.exec(`SET LOCAL lock_timeout = '1s'`);
      const reason = `node ${node.name} lost: no heartbeat within its lease`;
      const won = await tx.query(SQL.declareDead, [node.id, reason]);
      if (!won.length) return;
      dead.push(node.name);
      const running = await tx.query<{ id: number; job_name: string }>(SQL.runningOfNode, [node.id]);
      for (const r of running) {
        await failOrphan(tx, { id: r.id, owner_node_id: node.id, node_status: 'dead' }, reason);
        let newExecutionId: number | null = null;
        if (node.kind === 'node') {
          newExecutionId = Number((await tx.query<{ id: number }>(SQL.requeue, [r.id]))[0].id);
          if (db.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [r.job_name]);
        }
        failedOver.push({ node: node.name, failedExecutionId: r.id, newExecutionId });
      }
      // Partitions it ran resume from their checkpoints on live nodes, while their job runs on.
      for (const part of await tx.query<{ id: number; job_name: string }>(SQL.runningPartitionsOfNode, [node.id])) {
        await tx.execute(SQL.failPartition, [part.id, reason]);
        const requeued = await tx.query(SQL.requeuePartition, [part.id]);
        if (requeued.length && db.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [part.job_name]);
      }
      await tx.execute(SQL.releaseAffinity, [node.name]);
    });
  }
  return { dead, failedOver };
}
