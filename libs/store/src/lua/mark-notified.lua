-- Records that a finished job's end was announced (job.completed and its callback, confirmed by the broker): the
-- first call answers 1 (its caller counts the job's end), later ones 0. A script rather than a plain HSETNX so that,
-- with REDIS_WAIT_REPLICAS, the flag waits for a replica like every other change of a job: a flag lost in a failover
-- would let a later redelivery announce the job again and count its end twice, and would keep a cancelled or expired
-- job due in the deadline index (the sweep announces it again until it is flagged).
-- KEYS[1]  job hash
return redis.call('HSETNX', KEYS[1], 'notified', '1')
