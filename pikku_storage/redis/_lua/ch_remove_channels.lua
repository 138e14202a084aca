-- remove_channels: remove channels with all their subscriptions, as one step (03 §2). Topic
-- keys come from each channel's reverse index: ARGV[1] .. topic (03 §6.3).
-- KEYS[1] channels-seen, then per channel: its hash, its channel-topics set
-- ARGV[1] topic key prefix, then the channel ids in KEYS order
-- Reply: how many channels existed and were removed.
local removed = 0
for i = 2, #ARGV do
  local hash, topics, id = KEYS[2 * i - 2], KEYS[2 * i - 1], ARGV[i]
  for _, topic in ipairs(redis.call('SMEMBERS', topics)) do
    redis.call('SREM', ARGV[1] .. topic, id)
  end
  removed = removed + redis.call('DEL', hash, topics)
  redis.call('ZREM', KEYS[1], id)
end
return removed
