-- prune_deployments: delete every registration whose heartbeat is at or before the cutoff,
-- selected and deleted in one step (so a heartbeat that lands first wins); keys are the
-- prefixes in ARGV plus a member (03 §6.3).
-- KEYS[1] deployments zset
-- ARGV[1] cutoff (epoch ms)   ARGV[2] deployment key prefix
-- ARGV[3] deployment-functions key prefix   ARGV[4] function key prefix
-- Reply: the deleted ids.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local fset = ARGV[3] .. id
  for _, f in ipairs(redis.call('SMEMBERS', fset)) do redis.call('SREM', ARGV[4] .. f, id) end
  redis.call('DEL', ARGV[2] .. id, fset)
  redis.call('ZREM', KEYS[1], id)
end
return ids
