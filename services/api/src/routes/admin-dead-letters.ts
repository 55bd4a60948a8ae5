import type { FastifyInstance } from 'fastify';
import type { Config } from '@lookup/config';
import type { DeadLetterSelector } from '@lookup/messaging';
import type { DeadLetterAdmin } from '../deps.ts';
import { requireAdmin } from '../admin-auth.ts';
import { BrokerUnavailable, DeadLetterNotFound, NothingSelected } from '../http-errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

const DeadLetterSchema = {
  type: 'object',
  properties: {
    messageId: { type: ['string', 'null'] },
    jobId: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'], description: 'Why it was dead-lettered' },
    originalQueue: { type: ['string', 'null'] },
    originalExchange: { type: 'string' },
    routingKey: { type: 'string' },
    deadLetteredAt: { type: ['string', 'null'] },
    body: {
      description:
        'The message body: parsed JSON when it parses and is safe to show (at most 64 KiB, nested at most 32 levels); otherwise a preview of its text, or of its bytes in base64 when it is not UTF-8 (see bodyFormat, bodyNote)',
    },
    bodyFormat: { type: 'string', enum: ['json', 'text', 'base64'] },
    bodyTruncated: { type: 'boolean', description: 'Whether body is a truncated preview' },
    bodyNote: { type: ['string', 'null'], description: 'Why the body is shown as a preview (too large, too deeply nested, not JSON, not UTF-8)' },
    size: { type: 'integer', description: 'The body size in bytes' },
    contentType: { type: ['string', 'null'] },
  },
} as const;

const ADMIN_ERRORS = {
  401: errorResponse('Missing or wrong admin key (X-Admin-Key)'),
  503: errorResponse('RabbitMQ is unavailable'),
};

/**
 * Dead letters, operable: list them, and replay (re-publish to where they came from) or discard one or all.
 * Under /api/admin/dead-letters with the admin key. `npm run dlq` does the same from a shell.
 */
export function registerDeadLetterRoutes(app: FastifyInstance, deps: { config: Readonly<Config>; deadLetters: DeadLetterAdmin }): void {
  const { config, deadLetters } = deps;
  const requireAdminKey = requireAdmin(config); // before the body is read or validated
  const security = [{ adminKey: [] }];
  /** Runs a dead-letter operation; RabbitMQ failing is a 503. */
  const operate = async <T>(log: { warn(obj: object, msg: string): void }, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      log.warn({ err: (err as Error)?.message }, 'dead-letter operation failed');
      throw new BrokerUnavailable('dead-letters');
    }
  };

  app.get<{ Querystring: { limit?: string } }>(
    '/api/admin/dead-letters',
    {
      onRequest: requireAdminKey,
      schema: {
        tags: ['admin'],
        summary: 'List dead-lettered messages',
        description: 'The first `limit` messages of the dead-letter queue (they stay in it), with the reason each was dead-lettered.',
        security,
        querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$|^1000$' } }, additionalProperties: false },
        response: {
          200: {
            type: 'object',
            description: 'The first `limit` dead letters (default 50), oldest first, and how many the queue holds',
            properties: { count: { type: 'integer' }, messages: { type: 'array', items: DeadLetterSchema } },
          },
          ...ADMIN_ERRORS,
          ...API_ERROR_RESPONSES,
        },
      },
    },
    async (request) => operate(request.log, () => deadLetters.list(Number(request.query.limit ?? 50))),
  );

  app.post<{ Body: { messageId?: string; all?: boolean } }>(
    '/api/admin/dead-letters/replay',
    {
      onRequest: requireAdminKey,
      schema: {
        tags: ['admin'],
        summary: 'Replay dead-lettered messages',
        description: 'Re-publishes the message with `messageId` (or every message, with `all: true`) to the exchange and routing key it was first published to.',
        security,
        body: {
          type: 'object',
          properties: { messageId: { type: 'string', minLength: 1 }, all: { type: 'boolean' } },
          additionalProperties: false,
          examples: [{ messageId: '6f1c2b9e-0d4a-4c8e-9b1f-3a5d7e2c4b10' }],
        },
        response: { 200: { type: 'object', description: 'How many messages were re-published', properties: { replayed: { type: 'integer' } } }, 400: errorResponse('Neither messageId nor all: true'), 404: errorResponse('No dead letter has that messageId'), ...ADMIN_ERRORS, ...API_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const sel = selector(request.body);
      if (!sel) throw new NothingSelected('replay');
      const replayed = await operate(request.log, () => deadLetters.replay(sel));
      // A messageId that matches no dead letter: 404, not a 200 that says nothing happened.
      if (replayed === 0 && sel.messageId !== undefined) throw new DeadLetterNotFound(sel.messageId);
      return { replayed };
    },
  );

  app.delete<{ Querystring: { messageId?: string; all?: 'true' | 'false' } }>(
    '/api/admin/dead-letters',
    {
      onRequest: requireAdminKey,
      schema: {
        tags: ['admin'],
        summary: 'Discard dead-lettered messages',
        description: 'Removes the message with `messageId`, or every message with `all=true`.',
        security,
        querystring: { type: 'object', properties: { messageId: { type: 'string', minLength: 1 }, all: { type: 'string', enum: ['true', 'false'] } }, additionalProperties: false },
        response: { 200: { type: 'object', description: 'How many messages were removed', properties: { discarded: { type: 'integer' } } }, 400: errorResponse('Neither messageId nor all=true'), 404: errorResponse('No dead letter has that messageId'), ...ADMIN_ERRORS, ...API_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const sel = selector({ messageId: request.query.messageId, all: request.query.all === 'true' });
      if (!sel) throw new NothingSelected('discard');
      const discarded = await operate(request.log, () => deadLetters.discard(sel));
      if (discarded === 0 && sel.messageId !== undefined) throw new DeadLetterNotFound(sel.messageId);
      return { discarded };
    },
  );
}

function selector(input: { messageId?: string; all?: boolean } | undefined): DeadLetterSelector | undefined {
  if (input?.messageId) return { messageId: input.messageId };
  if (input?.all === true) return {};
  return undefined;
}
