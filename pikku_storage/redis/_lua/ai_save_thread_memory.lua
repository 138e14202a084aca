-- save_working_memory, thread scope: replace the memory of an existing thread (02 §2).
-- KEYS[1] thread hash   KEYS[2] thread memory
-- ARGV[1] memory JSON
-- Reply: 1 saved, 0 no such thread.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
