export * from './types.ts';
export * from './resource-host.ts';
export * from './resource-client.ts';
export * from './run-resource-worker.ts';
