// Issue 15: every key a coordination script touches is passed in KEYS, never built inside Lua, so Redis Cluster
// (and any proxy that routes by declared keys) sees each script's keys before it runs.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** Commands the scripts call that take no key. */
const KEYLESS = new Set(['TIME']);
/** Commands whose every argument is a key. */
const ALL_KEYS = new Set(['DEL', 'UNLINK', 'EXISTS']);

const dir = new URL('./lua/', import.meta.url);
const scripts = readdirSync(dir).filter((f) => f.endsWith('.lua'));

/** Each redis.call / redis.pcall of `source`: its command and its argument expressions (top-level commas only). */
function calls(source: string): { command: string; args: string[] }[] {
  const out: { command: string; args: string[] }[] = [];
  const code = source.replace(/--[^\n]*/g, '');
  for (const m of code.matchAll(/redis\.p?call\(/g)) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; i < code.length && depth > 0; i++) {
      if (code[i] === '(' || code[i] === '{' || code[i] === '[') depth++;
      else if (code[i] === ')' || code[i] === '}' || code[i] === ']') depth--;
    }
    const inner = code.slice(start, i - 1);
    const args: string[] = [];
    let d = 0;
    let cur = '';
    for (const ch of inner) {
      if (ch === '(' || ch === '{' || ch === '[') d++;
      if (ch === ')' || ch === '}' || ch === ']') d--;
      if (ch === ',' && d === 0) {
        args.push(cur.trim());
        cur = '';
      } else cur += ch;
    }
    args.push(cur.trim());
    out.push({ command: args[0]!.replace(/^'|'$/g, '').toUpperCase(), args: args.slice(1) });
  }
  return out;
}

describe('coordination scripts take every key in KEYS', () => {
  it('finds the scripts and their calls', () => {
    expect(scripts).toContain('resource-place.lua');
    expect(calls("redis.call('HGET', KEYS[1], prefix .. 'x')")).toEqual([{ command: 'HGET', args: ['KEYS[1]', "prefix .. 'x'"] }]);
  });

  for (const file of scripts) {
    it(file, () => {
      const found = calls(readFileSync(new URL(file, dir), 'utf8'));
      expect(found.length).toBeGreaterThan(0);
      for (const { command, args } of found) {
        if (KEYLESS.has(command)) continue;
        const keys = ALL_KEYS.has(command) ? args : args.slice(0, 1);
        for (const key of keys) expect(key, `${file}: ${command} ${args.join(', ')}`).toMatch(/^KEYS\[[^\]]+\]$/);
      }
    });
  }
});
