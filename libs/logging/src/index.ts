export * from './logging.ts';
export * from './lifecycle.ts';
