import { defineLuaCommand, type ScriptCall } from '@lookup/contracts';
import type { Redis } from 'ioredis';

/**
 * Registers the Lua script `./lua/<name>.lua` kept beside this code (includes from `./lua/includes/` spliced
 * in): contracts' one loader, shared with @lookup/store (which this library may not import), under this
 * library's command prefix. Call it with the script's keys and arguments.
 */
export function defineScript(redis: Redis, name: string): ScriptCall {
  return defineLuaCommand(redis, `coord_${name.replace(/-/g, '_')}`, new URL(`./lua/${name}.lua`, import.meta.url));
}
