-- prune_channels: select the channels last seen strictly before the cutoff, oldest first
-- (ties by id: equal scores sort by member bytes), and remove them with their subscriptions
-- in the same step; channel keys are ARGV[3] .. id and ARGV[4] .. id, topic keys ARGV[5] ..
-- topic (03 §6.3).
-- KEYS[1] channels-seen
-- ARGV[1] cutoff (epoch ms)   ARGV[2] limit ("" = all)   ARGV[3] channel key prefix
-- ARGV[4] channel-topics key prefix   ARGV[5] topic key prefix
-- Reply: the removed ids in (last_seen, id) order.
local ids
if ARGV[2] == '' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
end
for _, id in ipairs(ids) do
  local topics = ARGV[4] .. id
  for _, topic in ipairs(redis.call('SMEMBERS', topics)) do
    redis.call('SREM', ARGV[5] .. topic, id)
  end
  redis.call('DEL', ARGV[3] .. id, topics)
  redis.call('ZREM', KEYS[1], id)
end
return ids
