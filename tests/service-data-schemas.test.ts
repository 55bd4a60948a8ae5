// Issue 11: each lookup service's data schema reaches the API through a generated file (services never import one
// another): the committed libs/contracts/src/generated/service-data-schemas.json must be what `npm run generate`
// writes now, and hold a schema for every catalogue service.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE, serviceDataSchemas } from '@lookup/contracts';
import { OUTPUT, buildServiceDataSchemas, render } from '../scripts/generate-service-schemas.ts';

describe('the generated service data schemas', () => {
  it('are up to date: regenerated from the workers, they equal the committed file (else run npm run generate)', async () => {
    const fresh = render(await buildServiceDataSchemas());
    expect(readFileSync(OUTPUT, 'utf8'), 'libs/contracts/src/generated/service-data-schemas.json is stale: run npm run generate').toBe(fresh);
  }, 60_000);

  it('hold an object schema (or a union of them) for every catalogue service, in catalogue order, and nothing else', () => {
    const schemas = serviceDataSchemas();
    expect(Object.keys(schemas)).toEqual(SERVICE_CATALOGUE.map((s) => s.name));
    const objectSchema = { type: 'object', properties: expect.any(Object) };
    for (const { name } of SERVICE_CATALOGUE) {
      // An object, or a union of objects (DNS answers a domain and an IP address with different records).
      const schema = schemas[name] as { anyOf?: unknown[] };
      if (schema.anyOf) for (const alternative of schema.anyOf) expect(alternative, name).toMatchObject(objectSchema);
      else expect(schema, name).toMatchObject(objectSchema);
    }
  });
});
