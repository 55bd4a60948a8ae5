/**
 * Redis keys of the coordination primitives; all under the suite's NAMESPACE. The resource directory's
 * scripts derive per-worker keys (`worker:<id>`, `owned:<id>`) from `resourcePrefix` inside Lua, so they assume
 * one Redis instance (not Redis Cluster), as the rest of the suite does.
 */
export function coordinationKeys(namespace: string) {
  const lease = `${namespace}:coord:lease:`;
  const res = `${namespace}:res:`;
  return {
    prefix: `${namespace}:coord:`,
    lease: (name: string) => `${lease}${name}`,
    leaseEpoch: (name: string) => `${namespace}:coord:epoch:${name}`,
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
