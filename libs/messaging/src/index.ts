export * from './topology.ts';
export * from './errors.ts';
export * from './broker.ts';
export * from './rpc.ts';
export * from './dead-letters.ts';
export { coalesceWrites } from './socket-tuning.ts';
