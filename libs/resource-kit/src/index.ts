export * from './types.ts';
export * from './resource-host.ts';
export * from './run-resource-worker.ts';
