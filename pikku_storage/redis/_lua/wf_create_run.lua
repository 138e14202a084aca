-- create_run: insert a run and index it (01 §5.3).
-- KEYS[1] run hash   KEYS[2] namespace seq   KEYS[3] runs   KEYS[4] status:running
-- KEYS[5] wfstatus:running:<workflow>   KEYS[6] updated:running   KEYS[7] wf:<workflow>
-- KEYS[8] names   KEYS[9] namecount   KEYS[10] idle (a run without steps is a stalled
--   candidate from its creation, 05 §3.5)
-- ARGV[1] run id   ARGV[2] workflow   ARGV[3] now (epoch ms)   ARGV[4] n, then n field/value
--   pairs of the run hash (every present field but seq, markers included), then optionally
--   the run's sequence number (a cluster takes it from its own slot first; KEYS[2] is then
--   not touched)
-- Reply: the run's namespace sequence number.
local given = ARGV[5 + 2 * tonumber(ARGV[4])]
local seq = given and tonumber(given) or redis.call('INCR', KEYS[2])
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'seq', seq)
hset_argv(KEYS[1], '', 5, tonumber(ARGV[4]))
local member = pad(seq, WF_SEQ) .. ':' .. ARGV[1]
for i = 3, 7 do redis.call('ZADD', KEYS[i], now, member) end
redis.call('ZADD', KEYS[8], 0, ARGV[2])
redis.call('HINCRBY', KEYS[9], ARGV[2], 1)
redis.call('ZADD', KEYS[10], now, ARGV[1])
return seq
