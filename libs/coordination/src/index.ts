export * from './clock.ts';
export * from './errors.ts';
export * from './keys.ts';
export * from './timing.ts';
export * from './lease.ts';
export * from './leader-election.ts';
export * from './membership.ts';
export * from './resource-directory.ts';
