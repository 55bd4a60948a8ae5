export * from './logging.ts';
export * from './lifecycle.ts';
export * from './pretty.ts';
