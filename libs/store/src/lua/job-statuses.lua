-- The status of each job, in KEYS order: a batch's view (GET /api/lookup/batch/{id}) in one call instead of one HGET
-- per job. The caller passes job hashes of one hash slot (a batch's jobs share its shard).
-- KEYS[1..n] job hashes
-- Returns a list of n statuses, false (nil) for a job that no longer exists.
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGET', KEYS[i], 'status')
end
return out
