import { describe, expect, it } from 'vitest';
import { LuaIncludeError, createLuaLoader, defineLuaCommand, type ScriptHost } from './lua-script.ts';

const base = 'file:///lib/src/lua/';
function loaderOver(files: Record<string, string>) {
  const reads: string[] = [];
  const load = createLuaLoader((file) => {
    reads.push(file.pathname);
    const text = files[file.href.slice(base.length)];
    if (text === undefined) throw new Error(`ENOENT: no such file, open '${file.pathname}'`);
    return text;
  });
  return { load: (name: string) => load(new URL(name, base)), reads };
}

describe('lua loader: includes', () => {
  it('splices an include in place of its line, resolved from the including file, nested includes too', () => {
    const { load } = loaderOver({
      'main.lua': 'local a = 1\n--- @include "includes/helper"\nreturn helper(a)\n',
      'includes/helper.lua': "-- @include 'inner.lua'\nlocal function helper(x) return inner(x) end\n",
      'includes/inner.lua': 'local function inner(x) return x + 1 end\n',
    });
    const lua = load('main.lua');
    expect(lua.indexOf('local function inner')).toBeGreaterThan(lua.indexOf('local a = 1'));
    expect(lua.indexOf('local function inner')).toBeLessThan(lua.indexOf('local function helper'));
    expect(lua.indexOf('local function helper')).toBeLessThan(lua.indexOf('return helper(a)'));
    expect(lua.split('\n').filter((line) => /^\s*-{2,3}\s*@include\s+["']/.test(line))).toEqual([]);
  });

  it('splices each file once per script, and reads and resolves each script once (cached)', () => {
    const { load, reads } = loaderOver({
      'main.lua': '--- @include "a"\n--- @include "b"\n',
      'a.lua': '--- @include "shared"\nlocal A = 1\n',
      'b.lua': '--- @include "shared"\nlocal B = 1\n',
      'shared.lua': 'local function shared() end\n',
    });
    const lua = load('main.lua');
    expect(lua.match(/local function shared/g)).toHaveLength(1);
    expect(load('main.lua')).toBe(lua);
    expect(reads.filter((r) => r.endsWith('/main.lua'))).toHaveLength(1);
  });

  it('fails loudly on a missing include, naming it and the file that includes it', () => {
    const { load } = loaderOver({ 'main.lua': '--- @include "includes/nope"\nreturn 1\n' });
    expect(() => load('main.lua')).toThrow(LuaIncludeError);
    expect(() => load('main.lua')).toThrow(/includes\/nope\.lua cannot be read \(included by main\.lua\)/);
  });

  it('fails loudly on a cycle', () => {
    const { load } = loaderOver({ 'a.lua': '--- @include "b"\n', 'b.lua': '--- @include "a"\n' });
    expect(() => load('a.lua')).toThrow(/lua include cycle: a\.lua -> b\.lua -> a\.lua/);
  });

  it('leaves other comments mentioning @include alone', () => {
    const text = '-- see the @include lines of other scripts\nreturn 1\n';
    expect(loaderOver({ 'main.lua': text }).load('main.lua')).toBe(text);
  });
});

describe('lua loader: registering a command', () => {
  it('defines a command once per client and passes the number of keys per call', async () => {
    const defined: string[] = [];
    const calls: unknown[][] = [];
    const client: ScriptHost & Record<string, unknown> = {
      defineCommand(name) {
        defined.push(name);
        client[name] = (...args: unknown[]) => Promise.resolve(calls.push(args));
      },
    };
    const file = new URL('./lua-script.test.ts', import.meta.url); // any readable file: never run here
    const call = defineLuaCommand(client, 'test_cmd', file);
    defineLuaCommand(client, 'test_cmd', file);
    await call(['k1', 'k2'], ['a', 1]);
    expect(defined).toEqual(['test_cmd']);
    expect(calls).toEqual([[2, 'k1', 'k2', 'a', 1]]);
  });

  it('keeps scripts out of a cluster client\'s auto-pipelines (they would be grouped by their key count), and leaves other clients alone', () => {
    const file = new URL('./lua-script.test.ts', import.meta.url);
    const shared: string[] = ['info'];
    const host = (isCluster: boolean): ScriptHost & Record<string, unknown> => ({ isCluster, options: { autoPipeliningIgnoredCommands: shared }, defineCommand(name) { this[name] = () => Promise.resolve(1); } });
    const cluster = host(true);
    defineLuaCommand(cluster, 'cmd_a', file);
    defineLuaCommand(cluster, 'cmd_b', file);
    defineLuaCommand(cluster, 'cmd_a', file);
    expect(cluster.options!.autoPipeliningIgnoredCommands).toEqual(['info', 'cmd_a', 'cmd_b']);
    expect(shared).toEqual(['info']); // a possibly shared default array is not changed
    const single = host(false);
    defineLuaCommand(single, 'cmd_a', file);
    expect(single.options!.autoPipeliningIgnoredCommands).toBe(shared);
  });
});
