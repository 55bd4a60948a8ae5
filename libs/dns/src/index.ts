export * from './dns.ts';
export * from './arpa.ts';
