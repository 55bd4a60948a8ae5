export * from './topology.ts';
export * from './errors.ts';
export * from './broker.ts';
