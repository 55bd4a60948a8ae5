import type { TenantConfig } from '@lookup/config';
import type { TenantQuota } from '@lookup/store';
import { StoreUnavailable, TenantQuotaExceeded } from './http-errors.ts';

/** A submission's tenant quota: spends and frees the in-flight slots of the job ids it names. */
export interface TenantSpend {
  tenant: string;
  /** Checks and spends the quotas for these jobs, all or none; throws TenantQuotaExceeded (429) to refuse. */
  acquire(jobIds: readonly string[]): Promise<void>;
  /** Frees the slots of jobs that were not created after all (best effort: a lost release lapses by itself). */
  release(jobIds: readonly string[]): Promise<void>;
}

/** The tenant quota of a request whose key belongs to a tenant; undefined without a tenant or a quota store. */
export function tenantSpend(quota: Pick<TenantQuota, 'acquire' | 'release'> | undefined, tenant: TenantConfig | null): TenantSpend | undefined {
  if (!quota || !tenant) return undefined;
  return {
    tenant: tenant.name,
    async acquire(jobIds) {
      let decision;
      try {
        decision = await quota.acquire(tenant.name, tenant, jobIds);
      } catch {
        throw new StoreUnavailable();
      }
      if (decision.allowed) return;
      if (decision.reason === 'day') {
        throw new TenantQuotaExceeded(tenant.name, 'day', tenant.jobsPerDay, decision.jobsToday, jobIds.length, decision.retryAfterSeconds);
      }
      throw new TenantQuotaExceeded(tenant.name, 'in-flight', tenant.jobsInFlight, decision.jobsInFlight, jobIds.length);
    },
    async release(jobIds) {
      await quota.release(tenant.name, jobIds).catch(() => undefined);
    },
  };
}
