-- start / heartbeat: register a deployment with exactly its functions (03 §4). With mode
-- "heartbeat" an existing registration only gets its score moved; a vanished one is
-- re-created. Function keys are ARGV[5] .. name; an earlier id's keys are KEYS[4..5].
-- KEYS[1] deployments zset   KEYS[2] deployment hash   KEYS[3] its deployment-functions set
-- KEYS[4] earlier id's hash, KEYS[5] earlier id's functions set (only with an earlier id)
-- ARGV[1] "start" or "heartbeat"   ARGV[2] deployment id   ARGV[3] endpoint
-- ARGV[4] now (epoch ms)   ARGV[5] function key prefix   ARGV[6] earlier id ("" = none)
-- ARGV[7..] function names
-- Reply: 1.
local id, now, fprefix = ARGV[2], tonumber(ARGV[4]), ARGV[5]
if ARGV[1] == 'heartbeat' and redis.call('ZSCORE', KEYS[1], id) then
  redis.call('ZADD', KEYS[1], now, id)
  return 1
end
if ARGV[6] ~= '' then
  for _, f in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('SREM', fprefix .. f, ARGV[6]) end
  redis.call('DEL', KEYS[4], KEYS[5])
  redis.call('ZREM', KEYS[1], ARGV[6])
end
local wanted = {}
for i = 7, #ARGV do wanted[ARGV[i]] = true end
for _, f in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not wanted[f] then redis.call('SREM', fprefix .. f, id) end
end
redis.call('DEL', KEYS[3])
for i = 7, #ARGV do
  redis.call('SADD', KEYS[3], ARGV[i])
  redis.call('SADD', fprefix .. ARGV[i], id)
end
redis.call('HSET', KEYS[2], 'endpoint', ARGV[3])
redis.call('ZADD', KEYS[1], now, id)
return 1
