-- insert_step_state: create a step and its first attempt (01 §3.3, §5.3), with markers (05 §4).
-- KEYS[1] run hash   KEYS[2] steps   KEYS[3] stepids   KEYS[4] order   KEYS[5] attempts
-- KEYS[6] history   KEYS[7] steprefs   KEYS[8] idle   KEYS[9] undispatched
-- ARGV[1] run id   ARGV[2] step id   ARGV[3] step name   ARGV[4] now (epoch ms)
-- ARGV[5] n, then n field/value pairs of the live step; then m, then m pairs of attempt 1
-- Reply: 1 created, 0 run missing, -1 the run already has a step of that name.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[2]) == 0 then return -1 end
local id = ARGV[2]
local now = tonumber(ARGV[4])
local step_seq = redis.call('HINCRBY', KEYS[1], 'step_seq', 1)
local attempt_seq = redis.call('HINCRBY', KEYS[1], 'attempt_seq', 1)
local next_arg = hset_argv(KEYS[2], id .. ':', 6, tonumber(ARGV[5]))
hset_argv(KEYS[5], id .. ':1:', next_arg + 1, tonumber(ARGV[next_arg]))
redis.call('ZADD', KEYS[4], now, pad(step_seq, WF_SEQ) .. ':' .. id)
redis.call('ZADD', KEYS[6], now, pad(attempt_seq, WF_SEQ) .. ':' .. id .. ':1')
redis.call('HSET', KEYS[7], id, ARGV[1])
step_markers(KEYS[1], KEYS[8], KEYS[9], ARGV[1], id, nil, 'pending', now)
return 1
