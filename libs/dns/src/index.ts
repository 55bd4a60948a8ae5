export * from './dns.ts';
export * from './arpa.ts';
export * from './checked-lookup.ts';
