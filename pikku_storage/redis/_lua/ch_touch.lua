-- touch: set last_seen of an existing channel, even backwards (03 §2).
-- KEYS[1] channel hash   KEYS[2] channels-seen
-- ARGV[1] channel id   ARGV[2] now (epoch ms)
-- Reply: 1 done, 0 no such channel.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[1])
return 1
