export * from './services.ts';
export * from './status.ts';
export * from './target.ts';
export * from './target-policy.ts';
export * from './messages.ts';
export * from './http.ts';
export * from './errors.ts';
export * from './resources.ts';
