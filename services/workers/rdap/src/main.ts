import { runWorker } from '@lookup/worker-kit';
import { rdapLookup } from './lookup.ts';

await runWorker(rdapLookup);
