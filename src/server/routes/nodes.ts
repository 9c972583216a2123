import type { FastifyInstance } from 'fastify';
import { recentNodes, requestDrain, resumeNode } from '../../repository/nodes.ts';
import type { ApiContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { errors, ref } from '../schemas.ts';
import { nodeOverviewJson } from '../views.ts';

const nameParam = { type: 'object', properties: { name: { type: 'string', title: 'node name' } }, required: ['name'] } as const;

export async function nodeRoutes(app: FastifyInstance, { ns }: ApiContext) {
  app.get<{ Querystring: { withinMs: number; all: boolean } }>('/api/nodes', {
    schema: {
      summary: 'Live nodes and those that ended recently (the newest incarnation of each name, and every live one, unless all=true)',
      description: "Each node's heartbeat age and lease (by the database's clock), what it runs, its concurrency, and whether it is draining.",
      tags: ['nodes'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          withinMs: { type: 'integer', minimum: 0, maximum: 30 * 86_400_000, default: 3_600_000, description: 'also nodes that ended at most this long ago' },
          all: { type: 'boolean', default: false, description: 'every incarnation of each node name, not only the newest' },
        },
      },
      response: { 200: { type: 'array', items: ref('Node') }, ...errors(400, 401, 503) },
    },
  }, async (req) => (await recentNodes(ns.db, req.query.withinMs, req.query.all)).map(nodeOverviewJson));

  // Drain and resume: each asks the live node of that name, through the repository, and answers
  // 202 with the node as it is now (it sees the request within a heartbeat).
  const nodeAction = (action: 'drain' | 'resume', ask: typeof requestDrain, summary: string, description: string) =>
    app.post<{ Params: { name: string } }>(`/api/nodes/:name/${action}`, {
      config: { role: 'operator', audit: { action: `node.${action}`, target: (req) => `node ${(req.params as { name: string }).name}` } },
      schema: {
        summary,
        description: `${description} 202 with the node. Needs the operator role.`,
        tags: ['nodes'],
        params: nameParam,
        response: { 202: ref('Node'), ...errors(400, 401, 403, 404, 503) },
      },
    }, async (req, reply) => {
      const { name } = req.params;
      if (!(await ask(ns.db, name))) throw notFound(`no live node named ${name}`);
      const node = (await recentNodes(ns.db, 0)).find((n) => n.name === name && n.status === 'alive');
      if (!node) throw notFound(`no live node named ${name}`);
      return reply.code(202).send(nodeOverviewJson(node));
    });
  nodeAction(
    'drain',
    requestDrain,
    'Drain a node',
    'The node takes no more work at once, stops its running executions and partitions at their next chunk boundary and hands ' +
      'them over to the other nodes (as on SIGTERM), but stays up until it is shut down or resumed.',
  );
  nodeAction(
    'resume',
    resumeNode,
    'Resume a drained node',
    'Withdraws the drain request: the node takes work again once it sees that (within a heartbeat), its scheduler too. ' +
      'What it handed over stays queued for any node. A node that is not draining is left as it is.',
  );
}
