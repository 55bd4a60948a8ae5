export * from './keys.ts';
export * from './redis.ts';
export * from './job-store.ts';
export * from './result-store.ts';
export * from './rate-limit.ts';
export * from './delivery-counter.ts';
export * from './idempotency.ts';
export * from './callback-store.ts';
