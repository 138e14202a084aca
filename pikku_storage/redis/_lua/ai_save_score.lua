-- save_score: append one grade to an existing agent run's scores (05 §2.1, §4).
-- KEYS[1] run hash   KEYS[2] run scores zset
-- ARGV[1] created_at (epoch ms)   ARGV[2] entry JSON (scorer, score as repr, reason, metadata)
-- Reply: 1 stored, 0 no such run (nothing stored).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'score_seq', 1)
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), pad(seq, AI_SEQ) .. ':' .. ARGV[2])
return 1
