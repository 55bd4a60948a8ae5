import { describe, expect, it } from 'vitest';
import { resourceKeyProblem } from './resources.ts';

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
