-- Several hashes read in one snapshot (read-only): the second step of a list read whose
-- first step gave the keys (02 §5.4 thread lists and run reads).
-- KEYS[1..] hashes
-- ARGV: none
-- Reply: {#flat, HGETALL KEYS[1]..., #flat, HGETALL KEYS[2]..., ...}.
local out = {}
for _, key in ipairs(KEYS) do append_counted(out, redis.call('HGETALL', key)) end
return out
