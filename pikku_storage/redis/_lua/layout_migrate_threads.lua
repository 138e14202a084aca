-- layout 1 -> 2, one batch of threads: add their resource ids to the resources zset
-- (05 D14, §4); idempotent.
-- KEYS[1] resources, then the thread hashes
-- ARGV: none
-- Reply: how many threads were read.
for i = 2, #KEYS do
  local r = redis.call('HGET', KEYS[i], 'resource_id')
  if r then redis.call('ZADD', KEYS[1], 0, r) end
end
return #KEYS - 1
