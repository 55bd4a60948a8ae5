export * from './defaults.ts';
export * from './topology.ts';
export * from './errors.ts';
export * from './connection.ts';
export * from './broker.ts';
export * from './publishers.ts';
export * from './rpc.ts';
export * from './dead-letters.ts';
export { coalesceWrites } from './socket-tuning.ts';
