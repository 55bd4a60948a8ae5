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
          'poll its statusUrl. Every error is JSON `{error, message?, details?}`.',
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
}
