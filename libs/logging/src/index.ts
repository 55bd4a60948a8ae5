export * from './logging.ts';
export * from './pretty.ts';
