-- add_channel: create a channel unless its id is taken (03 §2).
-- KEYS[1] channel hash   KEYS[2] channels-seen
-- ARGV[1] channel id   ARGV[2] name   ARGV[3] opening data JSON   ARGV[4] now (epoch ms)
-- Reply: 1 created, 0 the id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'opening', ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[1])
return 1
