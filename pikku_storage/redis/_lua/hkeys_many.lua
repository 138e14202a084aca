-- The fields of several hashes in one snapshot (read-only).
-- KEYS[1..] hashes
-- ARGV: none
-- Reply: {#fields, fields of KEYS[1]..., #fields, fields of KEYS[2]..., ...}.
local out = {}
for _, key in ipairs(KEYS) do append_counted(out, redis.call('HKEYS', key)) end
return out
