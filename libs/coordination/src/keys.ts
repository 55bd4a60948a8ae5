/**
 * Redis keys of the coordination primitives; all under the suite's NAMESPACE, with hash tags so every script
 * touches one hash slot on Redis Cluster:
 * - a lease and its epoch counter share the tag `{<ns>:<name>}`;
 * - the resource directory (workers, pins, epochs, per-key leases and targets, per-worker records) shares ONE tag
 *   `{<ns>:res}`: its scripts read the records of the live workers they find (`worker:<id>`, `owned:<id>`, built
 *   from `resourcePrefix` inside Lua, all in that slot), so on a cluster the whole directory lives on the one node
 *   that owns that slot. It is small (a few keys per worker and per resource) and written about once per heartbeat.
 */
export function coordinationKeys(namespace: string) {
  const leaseTag = (name: string) => `${namespace}:coord:{${namespace}:${name}}`;
  const res = `${namespace}:res:{${namespace}:res}:`;
  return {
    prefix: `${namespace}:coord:`,
    lease: (name: string) => `${leaseTag(name)}:lease`,
    leaseEpoch: (name: string) => `${leaseTag(name)}:epoch`,
    members: (group: string) => `${namespace}:coord:members:${group}`,
    resourcePrefix: res,
    resourceWorkers: `${res}workers`,
    resourceWorker: (id: string) => `${res}worker:${id}`,
    resourceOwned: (id: string) => `${res}owned:${id}`,
    resourcePins: `${res}pins`,
    resourceEpochs: `${res}epochs`,
    resourceLease: (key: string) => `${res}lease:${key}`,
    resourceTarget: (key: string) => `${res}target:${key}`,
  };
}
export type CoordinationKeys = ReturnType<typeof coordinationKeys>;
