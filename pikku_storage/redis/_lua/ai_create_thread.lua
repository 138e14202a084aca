-- create_thread: create a thread unless its id is taken, and index it (02 §2, §5.4, 05 §4).
-- KEYS[1] thread hash   KEYS[2] namespace seq   KEYS[3] threads   KEYS[4] resource:<R>
-- KEYS[5] resources (raw ids of resources with a thread)
-- ARGV[1] thread id   ARGV[2] now (epoch ms)   ARGV[3] resource id   ARGV[4] n, then n
--   field/value pairs, then optionally the thread's sequence number (a cluster takes it from
--   its own slot first; KEYS[2] is then not touched)
-- Reply: 1 created, 0 the id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local given = ARGV[5 + 2 * tonumber(ARGV[4])]
local seq = given and tonumber(given) or redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'seq', seq, 'msg_seq', 0, 'rev', 0)
hset_argv(KEYS[1], '', 5, tonumber(ARGV[4]))
local member = pad(seq, AI_SEQ) .. ':' .. ARGV[1]
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), member)
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), member)
redis.call('ZADD', KEYS[5], 0, ARGV[3])
return 1
