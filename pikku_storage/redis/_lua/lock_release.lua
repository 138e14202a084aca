-- lock release: compare-and-delete, so a holder never removes another's lock (01 §5.3).
-- KEYS[1] lock key
-- ARGV[1] holder token
-- Reply: 1 released, 0 the token was gone (the lease had been lost).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
