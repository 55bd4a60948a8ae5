import { runWorker } from '@lookup/worker-kit';
import { dnsLookup } from './lookup.ts';

await runWorker(dnsLookup);
