-- count_runs on a cluster (read-only): the ZCARD of each given status index of one bucket, in
-- one atomic step, so a run moving between statuses is counted once (01 count_runs).
-- KEYS[1..] the bucket's status (or workflow+status) index zsets, one per status
-- Reply: their cardinalities, in KEYS order.
local out = {}
for i = 1, #KEYS do out[i] = redis.call('ZCARD', KEYS[i]) end
return out
