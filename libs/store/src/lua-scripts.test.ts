import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadLuaScript } from '@lookup/contracts';

const dir = new URL('./lua/', import.meta.url);
const scripts = readdirSync(dir).filter((name) => name.endsWith('.lua'));

describe("the store's Lua scripts", () => {
  it.each(scripts)('%s loads with every include resolved', (name) => {
    const lua = loadLuaScript(new URL(name, dir));
    expect(lua.split('\n').filter((line) => /^\s*-{2,3}\s*@include\s+["']/.test(line))).toEqual([]);
  });

  it('record-outcome (the saga) and save-result (the worker) share one recordOutcome (includes/record-outcome.lua), defined nowhere else', () => {
    for (const name of ['record-outcome.lua', 'save-result.lua']) {
      const lua = loadLuaScript(new URL(name, dir));
      expect(lua.match(/local function recordOutcome\(/g)).toHaveLength(1);
      expect(lua.indexOf('local function recordOutcome(')).toBeLessThan(lua.lastIndexOf('recordOutcome(KEYS'));
    }
  });

  it('cancel-job and expire-job share one finishJob (includes/finish-job.lua), defined nowhere else', () => {
    for (const name of ['cancel-job.lua', 'expire-job.lua']) {
      const lua = loadLuaScript(new URL(name, dir));
      expect(lua.match(/local function finishJob\(/g)).toHaveLength(1);
      expect(lua.indexOf('local function finishJob(')).toBeLessThan(lua.indexOf('finishJob(job,'));
    }
  });
});
