import { readFileSync } from 'node:fs';

/**
 * The one Lua script loader of the suite (@lookup/store and @lookup/coordination each wrap it in a two-line
 * `defineScript`). It lives here because both infra libraries may import contracts and neither may import the
 * other (scripts/check-boundaries.mjs); it needs no Redis client library: the client is taken structurally.
 *
 * Convention: a library keeps its scripts in `src/lua/<name>.lua` and shared blocks in `src/lua/includes/`. A
 * line `--- @include "includes/<name>"` (BullMQ's syntax; path relative to the including file, `.lua` optional)
 * is replaced at load time by that file's text, includes nested in it resolved the same way. Each file is
 * spliced once per script (a second include of it is dropped), a cycle or a missing file fails loudly at load,
 * i.e. when the store or coordinator is created. Scripts are read and resolved once per process (cached).
 */

/** `--- @include "name"` (or `-- @include 'name'`) alone on its line. */
const INCLUDE_LINE = /^[ \t]*-{2,3}[ \t]*@include[ \t]+(["'])(.+?)\1[ \t;]*$/gm;

export type ReadText = (file: URL) => string;

export class LuaIncludeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LuaIncludeError';
  }
}

const fileName = (file: URL) => file.pathname.slice(file.pathname.lastIndexOf('/') + 1);

/** A loader with its own cache, over `read` (tests pass an in-memory reader). */
export function createLuaLoader(read: ReadText = (file) => readFileSync(file, 'utf8')) {
  const cache = new Map<string, string>();

  function resolve(file: URL, chain: string[], spliced: Set<string>): string {
    let source: string;
    try {
      source = read(file);
    } catch (err) {
      const from = chain.length > 0 ? ` (included by ${chain.map((href) => fileName(new URL(href))).join(' -> ')})` : '';
      throw new LuaIncludeError(`lua script ${file.pathname} cannot be read${from}: ${(err as Error).message}`);
    }
    const here = [...chain, file.href];
    return source.replace(INCLUDE_LINE, (_line, _quote: string, name: string) => {
      const target = new URL(name.endsWith('.lua') ? name : `${name}.lua`, file);
      if (here.includes(target.href)) {
        throw new LuaIncludeError(`lua include cycle: ${[...here, target.href].map((href) => fileName(new URL(href))).join(' -> ')}`);
      }
      if (spliced.has(target.href)) return `-- @include "${name}": already spliced above`;
      spliced.add(target.href);
      const body = resolve(target, here, spliced).replace(/\s+$/, '');
      return `-- >>> @include "${name}"\n${body}\n-- <<< @include "${name}"`;
    });
  }

  /** The script at `file` with every include spliced in. */
  return function load(file: URL): string {
    let lua = cache.get(file.href);
    if (lua === undefined) {
      lua = resolve(file, [], new Set());
      cache.set(file.href, lua);
    }
    return lua;
  };
}

export const loadLuaScript = createLuaLoader();

export type ScriptCall = (keys: string[], args: (string | number)[]) => Promise<unknown>;

/** What the loader needs of a Redis client (ioredis's `defineCommand`, and `WAIT` for a replica policy). */
export interface ScriptHost {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
  wait?(numreplicas: number | string, timeout: number | string): Promise<number>;
  /** An ioredis Cluster client, and its options (auto-pipelining). */
  isCluster?: boolean;
  options?: { autoPipeliningIgnoredCommands?: string[] };
}

/** How many replicas must acknowledge a state change (Redis `WAIT`), and for how long to wait. */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** A state change a replica did not acknowledge in time: it may be lost by a failover, so it does not count. */
export class NotReplicatedError extends Error {
  readonly code = 'NOT_REPLICATED';
  readonly retryable = true;
  constructor(acknowledged: number, wanted: number, timeoutMs: number) {
    super(`redis write acknowledged by ${acknowledged} of ${wanted} replica(s) within ${timeoutMs} ms`);
    this.name = 'NotReplicatedError';
  }
}

const replicaWaits = new WeakMap<object, ReplicaWait>();

/** Sets the client's replica policy (the one place that creates clients calls it); replicas 0 means none. */
export function setReplicaWait(client: object, wait: ReplicaWait): void {
  if (wait.replicas > 0) replicaWaits.set(client, wait);
  else replicaWaits.delete(client);
}

/**
 * Waits until the client's writes so far reach its policy's replicas (WAIT covers everything this connection
 * wrote); throws NotReplicatedError when fewer acknowledge in time. No policy: returns at once.
 */
export async function awaitReplicas(client: ScriptHost): Promise<void> {
  const policy = replicaWaits.get(client);
  if (!policy || !client.wait) return;
  const acknowledged = Number(await client.wait(policy.replicas, policy.timeoutMs));
  if (acknowledged < policy.replicas) throw new NotReplicatedError(acknowledged, policy.replicas, policy.timeoutMs);
}

/**
 * On a cluster client, sends the script's calls on their own: ioredis files an auto-pipelined call under the node of
 * its first argument's slot, which for a script is its key count, so calls whose keys live on different nodes share
 * one pipeline and all fail ("All keys in the pipeline should belong to the same slots allocation group"). Sent on
 * its own, EVALSHA goes to the node of its keys. Other commands keep auto-pipelining.
 */
function keepOutOfClusterAutoPipelines(client: ScriptHost, commandName: string): void {
  if (!client.isCluster || !client.options) return;
  const ignored = client.options.autoPipeliningIgnoredCommands ?? [];
  // A new array: the default one may be shared by every Cluster client.
  if (!ignored.includes(commandName)) client.options.autoPipeliningIgnoredCommands = [...ignored, commandName];
}

/**
 * Registers `file` (includes spliced) as the client's command `commandName`, once per client: ioredis calls it
 * by SHA (EVALSHA, falling back to EVAL after a SCRIPT FLUSH or a Redis restart). The number of keys is given
 * per call, so one script can take a variable number of keys. Unless `replicated` is false (a counter whose loss
 * costs nothing, like a rate limit), each call then waits for the client's replica policy (awaitReplicas): a
 * change the replicas did not acknowledge rejects, so a caller never acts on what a failover may undo.
 */
export function defineLuaCommand(client: ScriptHost, commandName: string, file: URL, options: { replicated?: boolean } = {}): ScriptCall {
  if (!(commandName in client)) client.defineCommand(commandName, { lua: loadLuaScript(file) });
  keepOutOfClusterAutoPipelines(client, commandName);
  const command = (client as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[commandName]!;
  if (options.replicated === false) return (keys, args) => command.call(client, keys.length, ...keys, ...args);
  return async (keys, args) => {
    const result = await command.call(client, keys.length, ...keys, ...args);
    await awaitReplicas(client);
    return result;
  };
}
