import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

export interface SwaggerOptions {
  /** Whether /api routes require an API key (documented as a security requirement). */
  apiKeysRequired: boolean;
}

/**
 * OpenAPI 3 document generated from the route schemas (served at /swagger/json) and Swagger UI at
 * /swagger. Must be registered before the routes so it sees them. Shared schemas keep their $id as
 * their component name.
 */
export async function registerSwagger(app: FastifyInstance, { apiKeysRequired }: SwaggerOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Distributed lookup API',
        description:
          'Scatter-gather lookups of an IP address or domain (GeoIP, Ping, RDAP, ReverseDNS). Submit a lookup, then ' +
          'poll its statusUrl. Every error is JSON `{error, message?, details?}`.\n\n' +
          'Limits on every route (see the README, Security): a body over API_BODY_LIMIT_BYTES is 413, a URL over ' +
          'API_MAX_URL_LENGTH 414, request line and headers over API_MAX_HEADER_BYTES 431, and a request not received ' +
          'within API_HEADERS_TIMEOUT_MS (headers) or API_REQUEST_TIMEOUT_MS (whole request) 408; the 431, 408 and ' +
          '400 for bytes that are not HTTP come from the HTTP parser, before any route, and close the connection. ' +
          'When API_KEYS is set, a request without a valid key is 401, or 429 once its address has sent ' +
          'RATE_LIMIT_UNAUTHENTICATED_PER_MIN of them in a minute; it never counts against keyed clients.',
        version: '0.1.0',
      },
      tags: [
        { name: 'lookup', description: 'Submit lookups and read their results' },
        { name: 'health', description: 'Liveness and readiness probes' },
        { name: 'resources', description: 'Pinned resources: every request for a key goes to the one worker that owns it' },
        {
          name: 'admin',
          description:
            'Admin endpoints (X-Admin-Key: ADMIN_API_KEY, checked before the body: 401 without it). When ADMIN_API_KEY ' +
            'is unset they do not exist: 404, and they are absent from this document.',
        },
      ],
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          bearer: { type: 'http', scheme: 'bearer' },
          adminKey: { type: 'apiKey', in: 'header', name: 'X-Admin-Key' },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json: Record<string, unknown>, _baseUri: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transform: ({ schema, url }) => {
      // /api routes carry the API-key requirement when keys are configured.
      if (!apiKeysRequired || !url.startsWith('/api') || !schema) return { schema, url };
      return { schema: { ...schema, security: [{ apiKey: [] }, { bearer: [] }] } as typeof schema, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/swagger' });
  // Someone who opens the API's address in a browser lands on its documentation, not on a 404.
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/swagger', 302));
}
