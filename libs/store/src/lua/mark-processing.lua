-- Moves a job from Pending to Processing; never regresses a job that is already further along.
-- KEYS[1] job hash; ARGV[1] time (ISO 8601) the commands were dispatched;
-- ARGV[2] '1' to leave a tenant's Pending job Pending (TENANT_DISPATCH_WINDOW: it is dispatched only once its
--         tenant's window admits it, tenant-dispatch.ts), else '' or absent.
-- ARGV[3] now (epoch ms), or absent: a Pending job whose deadline has passed stays Pending (a tenant's job that waited
--         past its deadline is not dispatched; the deadline sweep finishes it).
-- Returns { status, tenant, overdue }: the job's status after the call ('' when the job does not exist), its tenant
-- (field `tenant`, TENANTS; '' for a job without one), and '1' when it was left Pending because it is overdue.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return { '', '' } end
local tenant = redis.call('HGET', KEYS[1], 'tenant') or ''
if status == 'Pending' then
  if ARGV[2] == '1' and tenant ~= '' then return { 'Pending', tenant } end
  if ARGV[3] and tonumber(redis.call('HGET', KEYS[1], 'deadlineAt') or '0') <= tonumber(ARGV[3]) then return { 'Pending', tenant, '1' } end
  redis.call('HSET', KEYS[1], 'status', 'Processing', 'dispatchedAt', ARGV[1])
  return { 'Processing', tenant }
end
return { status, tenant }
