import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RESOURCE_HEADER_MAX_COUNT,
  RESOURCE_HEADER_NAME_MAX_LENGTH,
  RESOURCE_HEADER_VALUE_MAX_LENGTH,
  RESOURCE_KEY_MAX_LENGTH,
  RESOURCE_METHOD_MAX_LENGTH,
  RESOURCE_QUERY_MAX_LENGTH,
  ResourceMessageValidators,
  resourceKeyProblem,
  resourceRequestLimitProblem,
} from './resources.ts';

describe('resourceKeyProblem', () => {
  it('accepts exact, case-sensitive keys with any printable segments', () => {
    for (const k of ['db/customers', 'DB/Customers', 'games/world-123', 'a', 'models/x y/ü', 'a..b/c.d']) expect(resourceKeyProblem(k), k).toBeUndefined();
  });
  it('refuses empty, dot and dot-dot segments, control characters, backslashes and over-long keys', () => {
    for (const k of ['', '/a', 'a/', 'a//b', '.', '..', 'db/../x', 'db/./x', 'a\u0000b', 'a\nb', 'a\u007fb', 'a\\..\\b', 'x'.repeat(513)]) {
      expect(resourceKeyProblem(k), JSON.stringify(k)).toBeDefined();
    }
  });
});

describe('resourceRequestLimitProblem agrees with the worker message schema', () => {
  const message = (r: { key: string; query: string; method: string; headers: Record<string, string> }) => ({
    type: 'request',
    requestId: 'r1',
    epoch: 1,
    body: '',
    deadline: 0,
    ...r,
  });

  it('says 414 for an over-long key or query string, 431 for headers, 400 for a bad key', () => {
    const ok = { key: 'db/a', query: 'x=1', method: 'GET', headers: { a: 'b' } };
    expect(resourceRequestLimitProblem(ok)).toBeUndefined();
    expect(resourceRequestLimitProblem({ ...ok, key: 'k'.repeat(RESOURCE_KEY_MAX_LENGTH + 1) })?.status).toBe(414);
    expect(resourceRequestLimitProblem({ ...ok, query: 'q'.repeat(RESOURCE_QUERY_MAX_LENGTH + 1) })?.status).toBe(414);
    expect(resourceRequestLimitProblem({ ...ok, headers: { a: 'v'.repeat(RESOURCE_HEADER_VALUE_MAX_LENGTH + 1) } })?.status).toBe(431);
    expect(resourceRequestLimitProblem({ ...ok, headers: { ['n'.repeat(RESOURCE_HEADER_NAME_MAX_LENGTH + 1)]: 'v' } })?.status).toBe(431);
    const many = Object.fromEntries(Array.from({ length: RESOURCE_HEADER_MAX_COUNT + 1 }, (_, i) => [`h${i}`, 'v']));
    expect(resourceRequestLimitProblem({ ...ok, headers: many })?.status).toBe(431);
    expect(resourceRequestLimitProblem({ ...ok, key: 'db/../x' })?.status).toBe(400);
  });

  it('whatever passes the API check passes the worker schema, and what fails the schema fails the check (property, 2,000 runs)', () => {
    const len = (max: number) => fc.integer({ min: 0, max: max + 3 });
    const arb = fc.record({
      keyLen: fc.oneof(len(RESOURCE_KEY_MAX_LENGTH), fc.integer({ min: RESOURCE_KEY_MAX_LENGTH - 2, max: RESOURCE_KEY_MAX_LENGTH + 2 })),
      keyChar: fc.constantFrom('a', 'é', '/', '.', '\u0001', '\\'),
      queryLen: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: RESOURCE_QUERY_MAX_LENGTH - 2, max: RESOURCE_QUERY_MAX_LENGTH + 2 })),
      method: fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE'), fc.string({ minLength: 0, maxLength: RESOURCE_METHOD_MAX_LENGTH + 2 })),
      headerCount: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: RESOURCE_HEADER_MAX_COUNT - 1, max: RESOURCE_HEADER_MAX_COUNT + 1 })),
      nameLen: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: RESOURCE_HEADER_NAME_MAX_LENGTH - 1, max: RESOURCE_HEADER_NAME_MAX_LENGTH + 1 })),
      valueLen: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: RESOURCE_HEADER_VALUE_MAX_LENGTH - 1, max: RESOURCE_HEADER_VALUE_MAX_LENGTH + 1 })),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const key = `db${'x'.repeat(Math.max(0, a.keyLen - 3))}${a.keyLen >= 3 ? a.keyChar : ''}`.slice(0, Math.max(1, a.keyLen));
        const headers: Record<string, string> = {};
        for (let i = 0; i < a.headerCount; i++) headers[`${i}-${'n'.repeat(a.nameLen)}`.slice(0, Math.max(a.nameLen, String(i).length + 1))] = 'v'.repeat(a.valueLen);
        const r = { key, query: 'q'.repeat(a.queryLen), method: a.method, headers };
        const apiOk = resourceRequestLimitProblem(r) === undefined;
        const schemaOk = ResourceMessageValidators.toWorker.check(message(r));
        // The API may be stricter (key syntax), never looser.
        if (apiOk) expect(schemaOk).toBe(true);
        if (!schemaOk) expect(apiOk).toBe(false);
      }),
      { numRuns: 2000, seed: 10 },
    );
  });
});
