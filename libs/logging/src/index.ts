export * from './logging.ts';
export * from './pretty.ts';
export * from './tracing.ts';
