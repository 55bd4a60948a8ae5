import { runWorker } from '@lookup/worker-kit';
import { geoipLookup } from './lookup.ts';

await runWorker(geoipLookup);
