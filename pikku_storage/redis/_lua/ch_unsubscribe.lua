-- unsubscribe: remove one subscription and its reverse entry (03 §3).
-- KEYS[1] topic set   KEYS[2] channel-topics set
-- ARGV[1] topic   ARGV[2] channel id
-- Reply: 1 a subscription was removed, 0 none existed.
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('SREM', KEYS[1], ARGV[2])
