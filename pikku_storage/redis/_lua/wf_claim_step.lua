-- claim_step: the one conditional transition, pending or scheduled -> running (01 §3.5).
-- KEYS[1] steps   KEYS[2] attempts
-- ARGV[1] step id   ARGV[2] now (epoch ms)   ARGV[3..] the live-step fields to return
-- Reply: {1, field, value, ...} claimed (present fields of the new state), {0} not claimable,
-- {-1} step missing.
local id = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], id .. ':status', id .. ':attempt')
if not cur[1] then return { -1 } end
if cur[1] ~= 'pending' and cur[1] ~= 'scheduled' then return { 0 } end
local sp = id .. ':'
local ap = id .. ':' .. cur[2] .. ':'
redis.call('HSET', KEYS[1], sp .. 'status', 'running', sp .. 'running_at', ARGV[2],
  sp .. 'updated_at', ARGV[2])
redis.call('HSET', KEYS[2], ap .. 'status', 'running', ap .. 'running_at', ARGV[2],
  ap .. 'updated_at', ARGV[2])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
return present_pairs(KEYS[1], sp, fields, { 1 })
