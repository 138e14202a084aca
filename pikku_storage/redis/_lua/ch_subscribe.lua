-- subscribe: existence check and insert in one step (03 §3).
-- KEYS[1] channel hash   KEYS[2] channel-topics set   KEYS[3] topic set
-- ARGV[1] topic   ARGV[2] channel id
-- Reply: 1 subscribed (new or already), 0 no such channel (nothing stored).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
