-- list_runs (read-only): a window of one run index, newest first, with each run's hash; the
-- one script that derives keys from members (01 §5.3): a member is "<seq20>:<run id>" and the
-- run key is ARGV[3] .. run id .. ARGV[4].
-- KEYS[1] the index zset (runs, wf:<w>, status:<s> or wfstatus:<s>:<w>)
-- ARGV[1] offset   ARGV[2] offset + limit - 1   ARGV[3] run key prefix   ARGV[4] run key suffix
-- Reply: {run id, #flat, HGETALL run..., ...} in index order.
local members = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 'REV')
local out = {}
for _, m in ipairs(members) do
  local id = string.sub(m, 22)
  out[#out + 1] = id
  append_counted(out, redis.call('HGETALL', ARGV[3] .. id .. ARGV[4]))
end
return out
