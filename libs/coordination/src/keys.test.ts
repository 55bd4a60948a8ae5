// Issue 15: every coordination script touches keys of one hash slot (Redis Cluster).
import { describe, expect, it } from 'vitest';
import { keySlot as slot } from '@lookup/contracts';
import { coordinationKeys } from './keys.ts';

describe('coordination keys on a cluster', () => {
  const k = coordinationKeys('ns1');
  it('keeps a lease and its epoch counter in one slot, different leases apart', () => {
    expect(slot(k.lease('saga-leader'))).toBe(slot(k.leaseEpoch('saga-leader')));
    expect(new Set(['a', 'b', 'c', 'd', 'e'].map((n) => slot(k.lease(n)))).size).toBeGreaterThan(1);
  });

  it('keeps the whole resource directory in one slot, per-key leases and targets included', () => {
    const all = [k.resourceWorkers, k.resourceWorkerInfo, k.resourceDraining, k.resourcePins, k.resourceEpochs, k.resourceLease('db/x'), k.resourceTarget('db/{y}'), k.resourceLease('{z}')];
    expect(new Set(all.map(slot)).size).toBe(1);
    expect(all.every((key) => key.startsWith('ns1:'))).toBe(true);
  });
});
