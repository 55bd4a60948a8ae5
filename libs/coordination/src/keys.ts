/**
 * Redis keys of the coordination primitives; all under the suite's NAMESPACE, with hash tags so every script
 * touches one hash slot on Redis Cluster:
 * - a lease and its epoch counter share the tag `{<ns>:<name>}`;
 * - the resource directory (workers, their info and draining flags, pins, epochs, per-key leases and targets)
 *   shares ONE tag `{<ns>:res}`, so each of its scripts (which may read any worker's record) runs on one node. The
 *   per-worker records are fields of hashes and members of sets with fixed names (a worker's keys are the pins that
 *   name it), so every key a script touches is passed in KEYS, none is built inside Lua. On a cluster the whole
 *   directory lives on the one node owning that slot; it is small (a few keys per resource, a field per worker) and
 *   written about once per heartbeat.
 */
export function coordinationKeys(namespace: string) {
  const leaseTag = (name: string) => `${namespace}:coord:{${namespace}:${name}}`;
  const res = `${namespace}:res:{${namespace}:res}:`;
  return {
    prefix: `${namespace}:coord:`,
    lease: (name: string) => `${leaseTag(name)}:lease`,
    leaseEpoch: (name: string) => `${leaseTag(name)}:epoch`,
    members: (group: string) => `${namespace}:coord:members:${group}`,
    /** Live resource workers: sorted set id -> last beat (ms, Redis clock). */
    resourceWorkers: `${res}workers`,
    /** Each worker's host, pid and start time: hash id -> JSON. */
    resourceWorkerInfo: `${res}worker-info`,
    /** Workers an admin is draining: set of ids. */
    resourceDraining: `${res}draining`,
    resourcePins: `${res}pins`,
    resourceEpochs: `${res}epochs`,
    resourceLease: (key: string) => `${res}lease:${key}`,
    resourceTarget: (key: string) => `${res}target:${key}`,
  };
}
export type CoordinationKeys = ReturnType<typeof coordinationKeys>;
