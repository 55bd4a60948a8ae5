import { runResourceWorker } from '@lookup/resource-kit';
import { createSqliteType } from './sqlite.ts';

await runResourceWorker(createSqliteType());
