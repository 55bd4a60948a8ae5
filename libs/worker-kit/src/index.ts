export * from './types.ts';
export * from './run-lookup.ts';
export * from './command-handler.ts';
export * from './run-worker.ts';
export * from './cancellations.ts';
