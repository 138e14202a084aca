-- resolve_approval: claim the pending approvals of one tool call id and log each decision
-- (02 §3, §5.4). Without a run filter, every run listed in the approval index must be among
-- the runs the client passed, else the answer is "retry".
-- KEYS[1] approval:<C>, then per run: run hash, run pending, run decisions
-- ARGV[1] tool call id   ARGV[2] status   ARGV[3] now (epoch ms)   ARGV[4] "1" to check that
--   the runs passed cover the index, else "0"; then the run ids in KEYS order
-- Reply: how many approvals this call claimed, or -1 (retry).
local c = ARGV[1]
if ARGV[4] == '1' then
  local passed = {}
  for i = 5, #ARGV do passed[ARGV[i]] = true end
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if not passed[string.sub(m, AI_SEQ + 2)] then return -1 end
  end
end
local claimed = 0
for i = 5, #ARGV do
  local k = 2 + 3 * (i - 5)
  local entry = redis.call('HGET', KEYS[k + 1], c)
  if entry then
    redis.call('HDEL', KEYS[k + 1], c)
    redis.call('RPUSH', KEYS[k + 2], ARGV[2] .. ':' .. ARGV[3] .. ':' .. entry)
    local seq = redis.call('HGET', KEYS[k], 'seq')
    redis.call('ZREM', KEYS[1], pad(seq, AI_SEQ) .. ':' .. ARGV[i])
    claimed = claimed + 1
  end
end
return claimed
