export * from './registry.ts';
export * from './catalogue.ts';
export * from './listener.ts';
export * from './serve.ts';
export * from './parse.ts';
export * from './job-end.ts';
