-- lock renewal: extend the lease only if this holder's token is still there (01 §5.3).
-- KEYS[1] lock key
-- ARGV[1] holder token   ARGV[2] lease (ms)
-- Reply: 1 renewed, 0 the token is gone (the lease was lost).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
