import { runWorker } from '@lookup/worker-kit';
import { pingLookup } from './lookup.ts';

await runWorker(pingLookup);
