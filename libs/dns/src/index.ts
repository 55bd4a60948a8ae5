export * from './dns.ts';
