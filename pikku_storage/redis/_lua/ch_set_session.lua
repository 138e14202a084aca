-- set_user_session: replace or clear the session of an existing channel (03 §2).
-- KEYS[1] channel hash
-- ARGV[1] session JSON ("" = clear)
-- Reply: 1 done, 0 no such channel.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'session')
else redis.call('HSET', KEYS[1], 'session', ARGV[1]) end
return 1
