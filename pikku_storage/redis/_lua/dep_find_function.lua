-- find_function (read-only): live registrations listing a function (03 §6.3); deployment
-- keys are ARGV[2] .. id.
-- KEYS[1] function set   KEYS[2] deployments zset
-- ARGV[1] cutoff (epoch ms; live iff score > cutoff)   ARGV[2] deployment key prefix
-- Reply: {id, score, endpoint, ...} unordered (the client sorts).
local out = {}
local cutoff = tonumber(ARGV[1])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) > cutoff then
    local endpoint = redis.call('HGET', ARGV[2] .. id, 'endpoint')
    if endpoint then
      out[#out + 1] = id
      out[#out + 1] = score
      out[#out + 1] = endpoint
    end
  end
end
return out
