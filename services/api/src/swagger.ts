import type { FastifyInstance } from 'fastify';
import swagger, { type SwaggerTransformObject } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type, type TSchema } from '@sinclair/typebox';
import { SERVICE_CATALOGUE, SERVICE_NAME_LIST, ServiceResultSchema, serviceDataSchemas } from '@lookup/contracts';
import { RESOURCE_BODY_METHODS, RESOURCE_REQUEST_BODY } from './schemas.ts';

type SecurityRequirement = Record<string, string[]>;

/** The alternatives that carry an API key: the X-API-Key header or an Authorization Bearer token. */
const API_KEY_ALTERNATIVES: readonly SecurityRequirement[] = [{ apiKey: [] }, { bearer: [] }];

/**
 * The security requirement of an /api operation: the route's own (the admin key), each alternative combined with
 * each way of sending the API key when API_KEYS is set. `undefined` when the operation needs nothing.
 */
export function withApiKey(declared: readonly SecurityRequirement[] | undefined, apiKeysRequired: boolean): SecurityRequirement[] | undefined {
  const own = declared && declared.length > 0 ? declared : undefined;
  if (!apiKeysRequired) return own ? [...own] : undefined;
  if (!own) return [...API_KEY_ALTERNATIVES];
  return own.flatMap((requirement) => API_KEY_ALTERNATIVES.map((key) => ({ ...key, ...requirement })));
}

interface MediaType {
  schema?: { $ref?: string };
  example?: unknown;
  examples?: Record<string, unknown>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, MediaType> } }>>;
  components: { schemas?: Record<string, { example?: unknown; properties?: Record<string, { items?: unknown }> }> };
}

const COMPONENT = '#/components/schemas/';
export const dataComponent = (name: string) => `${name}Data`;
export const resultComponent = (name: string) => `${name}Result`;

/**
 * Per catalogue service, for the OpenAPI document only: `<Name>Data`, the schema of its result `data` (the
 * worker's dataSchema, from contracts' generated service-data-schemas.json), and `<Name>Result`, ServiceResult
 * with that `serviceType` and that `data`. Registered as shared schemas so @fastify/swagger converts them to
 * OpenAPI 3.0 like the rest; no route validates or serialises with them (responses are unchanged).
 */
export function serviceResultSchemas(): TSchema[] {
  const data = serviceDataSchemas();
  return SERVICE_CATALOGUE.flatMap(({ name, description }) => [
    { ...(data[name] ?? Type.Object({}, { additionalProperties: true })), $id: dataComponent(name) } as TSchema,
    Type.Object(
      {
        ...ServiceResultSchema.properties,
        serviceType: Type.Literal(name),
        data: Type.Union([Type.Ref(dataComponent(name)), Type.Null()], { description: `The ${name} lookup's data; null unless it succeeded` }),
      },
      { $id: resultComponent(name), description: `A ${name} result: ${description}` },
    ),
  ]);
}

/**
 * The job document's results as clients should read them: ServiceResult becomes one of the `<Name>Result`
 * variants, told apart by `serviceType` (an OpenAPI discriminator), so each service's `data` schema is shown; the
 * per-service components are listed right after it.
 */
function documentServiceData(doc: OpenApiDocument): void {
  const schemas = doc.components?.schemas;
  if (!schemas?.ServiceResult) return;
  const names = SERVICE_CATALOGUE.map((s) => s.name).filter((name) => schemas[resultComponent(name)]);
  const serviceResult = {
    description: `One service's result: ${names.map(resultComponent).join(', ')}, told apart by \`serviceType\`, each with the schema of its service's \`data\`.`,
    oneOf: names.map((name) => ({ $ref: `${COMPONENT}${resultComponent(name)}` })),
    discriminator: { propertyName: 'serviceType', mapping: Object.fromEntries(names.map((name) => [name, `${COMPONENT}${resultComponent(name)}`])) },
  };
  const results = schemas.JobDocument?.properties?.results;
  if (results) results.items = { $ref: `${COMPONENT}ServiceResult` };
  const perService = new Set(names.flatMap((name) => [resultComponent(name), dataComponent(name)]));
  const ordered: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schemas)) {
    if (perService.has(key)) continue;
    ordered[key] = key === 'ServiceResult' ? serviceResult : value;
    if (key === 'ServiceResult') for (const name of names) Object.assign(ordered, { [resultComponent(name)]: schemas[resultComponent(name)], [dataComponent(name)]: schemas[dataComponent(name)] });
  }
  doc.components.schemas = ordered as typeof schemas;
}

/**
 * Request bodies as Swagger UI's "Try it out" should pre-fill them: a body given as a reference to a shared schema
 * gets that schema's example (@fastify/swagger keeps it on the component only), and the resource proxy's methods
 * that carry a body get the SQLite worker's request (the route itself has no body schema: it passes bytes through).
 */
function completeRequestBodies(doc: OpenApiDocument): void {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(item)) {
      for (const media of Object.values(operation?.requestBody?.content ?? {})) {
        if (media.example !== undefined || media.examples !== undefined) continue;
        const ref = media.schema?.$ref;
        const example = ref?.startsWith('#/components/schemas/') ? doc.components?.schemas?.[ref.slice(21)]?.example : undefined;
        if (example !== undefined) media.example = example;
      }
    }
  }
  const proxy = doc.paths?.['/api/resources/{*}'];
  if (proxy) {
    for (const method of RESOURCE_BODY_METHODS) {
      const operation = proxy[method];
      // A copy: @fastify/swagger shares one operation object between the methods of a route.
      if (operation && !operation.requestBody) proxy[method] = { ...operation, requestBody: structuredClone(RESOURCE_REQUEST_BODY) as never };
    }
  }
}

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
          `Scatter-gather lookups of an IP address or domain (${SERVICE_NAME_LIST}). Submit a lookup, then ` +
          'poll its statusUrl. Every error is JSON `{error, message, code?, details?}`.\n\n' +
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
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'One of API_KEYS (needed on /api routes only when API_KEYS is set)' },
          bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS as `Authorization: Bearer <key>`, instead of X-API-Key' },
          adminKey: { type: 'apiKey', in: 'header', name: 'X-Admin-Key', description: 'ADMIN_API_KEY, for the /api/admin routes' },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json: Record<string, unknown>, _baseUri: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transform: ({ schema, url }) => {
      // /api routes carry the API-key requirement when keys are configured, combined with what the route itself
      // declares (the admin routes' X-Admin-Key): each alternative then names both keys, sent together.
      if (!schema || !url.startsWith('/api')) return { schema, url };
      const security = withApiKey((schema as { security?: SecurityRequirement[] }).security, apiKeysRequired);
      return { schema: (security ? { ...schema, security } : schema) as typeof schema, url };
    },
    transformObject: (documentObject) => {
      const { openapiObject } = documentObject as { openapiObject: ReturnType<SwaggerTransformObject> };
      completeRequestBodies(openapiObject as unknown as OpenApiDocument);
      documentServiceData(openapiObject as unknown as OpenApiDocument);
      return openapiObject;
    },
  });
  for (const schema of serviceResultSchemas()) app.addSchema(schema);
  await app.register(swaggerUi, { routePrefix: '/swagger' });
  // Someone who opens the API's address in a browser lands on the dashboard (routes/dashboard.ts), not on a 404.
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/dashboard', 302));
}
