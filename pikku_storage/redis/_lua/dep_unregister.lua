-- stop: delete a registration with all its function entries (03 §4); function keys are
-- ARGV[2] .. name.
-- KEYS[1] deployments zset   KEYS[2] deployment hash   KEYS[3] its deployment-functions set
-- ARGV[1] deployment id   ARGV[2] function key prefix
-- Reply: 1 removed, 0 it was already gone.
for _, f in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('SREM', ARGV[2] .. f, ARGV[1]) end
redis.call('DEL', KEYS[2], KEYS[3])
return redis.call('ZREM', KEYS[1], ARGV[1])
