-- What deleting threads must know (read-only): per thread its identity, agents and runs.
-- KEYS: per thread: thread hash, thread agents set, thread runs zset
-- ARGV: none
-- Reply: per thread: 0 if missing, else 1, seq, rev, resource id, updated_at (epoch ms),
--   #agents, agents..., #runs, run ids...
local out = {}
for i = 1, #KEYS, 3 do
  local h = redis.call('HMGET', KEYS[i], 'seq', 'rev', 'resource_id', 'updated_at')
  if not h[1] then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    for j = 1, 4 do out[#out + 1] = h[j] end
    append_counted(out, redis.call('SMEMBERS', KEYS[i + 1]))
    local ids = {}
    for _, m in ipairs(redis.call('ZRANGE', KEYS[i + 2], 0, -1)) do
      ids[#ids + 1] = string.sub(m, AI_SEQ + 2)
    end
    append_counted(out, ids)
  end
end
return out
