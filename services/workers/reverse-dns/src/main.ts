import { runWorker } from '@lookup/worker-kit';
import { reverseDnsLookup } from './lookup.ts';

await runWorker(reverseDnsLookup);
