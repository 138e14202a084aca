-- list_deployments (read-only): every live registration with its endpoint (03 §6.3);
-- deployment keys are ARGV[2] .. id.
-- KEYS[1] deployments zset
-- ARGV[1] cutoff (epoch ms; live iff score > cutoff)   ARGV[2] deployment key prefix
-- Reply: {id, score, endpoint, ...} unordered (the client sorts).
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES')
local out = {}
for i = 1, #found, 2 do
  local endpoint = redis.call('HGET', ARGV[2] .. found[i], 'endpoint')
  if endpoint then
    out[#out + 1] = found[i]
    out[#out + 1] = found[i + 1]
    out[#out + 1] = endpoint
  end
end
return out
