-- claim_step: the one conditional transition, pending or scheduled -> running (01 §3.5), with
-- the run's markers (05 §4).
-- KEYS[1] steps   KEYS[2] attempts   KEYS[3] run hash   KEYS[4] idle   KEYS[5] undispatched
-- ARGV[1] step id   ARGV[2] now (epoch ms)   ARGV[3] run id   ARGV[4..] the live-step fields
--   to return
-- Reply: {1, field, value, ...} claimed (present fields of the new state), {0} not claimable,
-- {-1} step missing.
local id = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], id .. ':status', id .. ':attempt')
if not cur[1] then return { -1 } end
if cur[1] ~= 'pending' and cur[1] ~= 'scheduled' then return { 0 } end
claim_live(KEYS[1], KEYS[2], id, cur[2], ARGV[2])
step_markers(KEYS[3], KEYS[4], KEYS[5], ARGV[3], id, cur[1], 'running', tonumber(ARGV[2]))
return present_pairs(KEYS[1], id .. ':', argv_from(4), { 1 })
