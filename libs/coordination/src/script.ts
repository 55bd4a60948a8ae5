import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export type ScriptCall = (keys: string[], args: (string | number)[]) => Promise<unknown>;

/**
 * Registers a Lua script kept in ./lua beside this code: loaded once, called by SHA (ioredis falls back to
 * EVAL after a SCRIPT FLUSH or a Redis restart). The same helper as @lookup/store's, which this library may not
 * depend on.
 */
export function defineScript(redis: Redis, name: string): ScriptCall {
  const commandName = `coord_${name.replace(/-/g, '_')}`;
  if (!(commandName in redis)) {
    const lua = readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
    redis.defineCommand(commandName, { lua });
  }
  const command = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[commandName]!;
  // numberOfKeys is passed per call, so one script can take a variable number of keys.
  return (keys, args) => command.call(redis, keys.length, ...keys, ...args);
}
