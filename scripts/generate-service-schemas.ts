/**
 * Publishes each lookup service's data schema for the API (`npm run generate`):
 *
 *   for every SERVICE_CATALOGUE entry: @lookup/worker-<slug>/src/lookup.ts -> its lookup service's dataSchema
 *   -> libs/contracts/src/generated/service-data-schemas.json, keyed by service name (catalogue order)
 *
 * Services never import each other (scripts/check-boundaries.mjs), so the API cannot read a worker's schema
 * itself: its OpenAPI document is built from this file (contracts' serviceDataSchemas()). The lookup module is
 * found from the catalogue alone (no list of services here): it must export the LookupService whose `service` is
 * the entry's number. tests/service-data-schemas.test.ts fails when the file is stale or lacks a service.
 *
 *   npm run generate            writes the file (when it changed)
 *   npm run generate -- --check exits 1 when the file is not what it would write
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_CATALOGUE, type ServiceInfo } from '@lookup/contracts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const OUTPUT = path.join(ROOT, 'libs', 'contracts', 'src', 'generated', 'service-data-schemas.json');

/** The package and module holding a catalogue entry's lookup service. */
export const lookupModule = (entry: ServiceInfo) => `@lookup/worker-${entry.slug}/src/lookup.ts`;

interface LookupServiceLike {
  service: unknown;
  dataSchema: unknown;
  setup: unknown;
}

const isLookupService = (value: unknown): value is LookupServiceLike =>
  typeof value === 'object' && value !== null && 'service' in value && 'dataSchema' in value && typeof (value as { setup?: unknown }).setup === 'function';

/** A schema as plain JSON: TypeBox's symbol keys dropped, and no $id (the API names each one). */
function plain(schema: unknown): Record<string, unknown> {
  const json = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  delete json.$id;
  return json;
}

/** Every catalogue service's data schema, keyed by name, in catalogue order. Throws naming a service without one. */
export async function buildServiceDataSchemas(): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const entry of SERVICE_CATALOGUE) {
    const specifier = lookupModule(entry);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifier)) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${entry.name}: cannot import ${specifier} (the catalogue's slug '${entry.slug}' names the package): ${(err as Error).message}`, { cause: err });
    }
    const schemas = new Set(Object.values(mod).filter(isLookupService).filter((s) => s.service === entry.value).map((s) => JSON.stringify(plain(s.dataSchema))));
    if (schemas.size === 0) throw new Error(`${entry.name}: ${specifier} exports no lookup service for service ${entry.value} (defineLookupService({ service, dataSchema, setup }))`);
    if (schemas.size > 1) throw new Error(`${entry.name}: ${specifier} exports lookup services with different data schemas`);
    out[entry.name] = JSON.parse([...schemas][0]!) as Record<string, unknown>;
  }
  return out;
}

export const render = (schemas: Record<string, unknown>): string => `${JSON.stringify(schemas, null, 2)}\n`;

function current(): string | undefined {
  try {
    return readFileSync(OUTPUT, 'utf8');
  } catch {
    return undefined;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = render(await buildServiceDataSchemas());
  const rel = path.relative(ROOT, OUTPUT);
  if (process.argv.includes('--check')) {
    if (current() !== text) {
      process.stderr.write(`${rel} is stale: run npm run generate\n`);
      process.exit(1);
    }
    process.stdout.write(`${rel} is up to date\n`);
  } else if (current() === text) {
    process.stdout.write(`${rel} unchanged\n`);
  } else {
    writeFileSync(OUTPUT, text);
    process.stdout.write(`${rel} written (${SERVICE_CATALOGUE.map((s) => s.name).join(', ')})\n`);
  }
}
