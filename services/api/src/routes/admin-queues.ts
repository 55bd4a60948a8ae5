import type { FastifyInstance } from 'fastify';
import type { Config } from '@lookup/config';
import { requireAdmin } from '../admin-auth.ts';
import { createQueueSummary } from '../rabbitmq-queues.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

const QueueSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    messages: { type: 'integer', description: 'Ready plus unacknowledged' },
    ready: { type: 'integer' },
    unacked: { type: 'integer' },
    consumers: { type: 'integer' },
    publishRate: { type: ['number', 'null'], description: 'Messages per second published to the queue' },
    deliverRate: { type: ['number', 'null'], description: 'Messages per second delivered from the queue' },
  },
} as const;

/**
 * GET /api/admin/queues: depth and consumers of this suite's queues (NAMESPACE) from RabbitMQ's management API
 * (RABBITMQ_MANAGEMENT_URL), for the dashboard. Always 200: `available: false` with the reason when the management
 * API cannot be reached or refuses.
 */
export function registerQueueRoutes(app: FastifyInstance, deps: { config: Readonly<Config> }): void {
  const { config } = deps;
  const summary = createQueueSummary({ managementUrl: config.rabbitmqManagementUrl, amqpUrl: config.amqpUrl, namespace: config.namespace });
  app.get(
    '/api/admin/queues',
    {
      onRequest: requireAdmin(config),
      schema: {
        tags: ['admin'],
        summary: "Summarise the suite's queues",
        description:
          "Messages (ready, unacknowledged) and consumers of every queue of this NAMESPACE, read from RabbitMQ's management " +
          'API (RABBITMQ_MANAGEMENT_URL, by default AMQP_URL\'s user and host on port 15672; the rabbitmq_management ' +
          'plugin). When it cannot be reached: `available: false` and the reason.',
        security: [{ adminKey: [] }],
        response: {
          200: {
            type: 'object',
            description: 'The queues, by name; or available: false and why',
            required: ['available'],
            properties: {
              available: { type: 'boolean' },
              vhost: { type: 'string' },
              queues: { type: 'array', items: QueueSchema },
              reason: { type: 'string' },
            },
          },
          ...API_ERROR_RESPONSES,
          401: errorResponse('Missing or wrong admin key (X-Admin-Key), or API key (when API_KEYS is set)'),
        },
      },
    },
    async () => summary(),
  );
}
