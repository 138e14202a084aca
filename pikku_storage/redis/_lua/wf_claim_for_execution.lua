-- claim_step_for_execution: one conditional write (05 D4, §3.3). The step is found by name,
-- its stored rpc_name compared first (whatever the status), then pending/scheduled become
-- running as claim_step does, or a failed step (below max_attempts when given) gets its next
-- attempt running as create_retry_attempt does; markers in the same write (05 §4).
-- KEYS[1] run hash   KEYS[2] steps   KEYS[3] stepids   KEYS[4] attempts   KEYS[5] history
-- KEYS[6] idle   KEYS[7] undispatched
-- ARGV[1] run id   ARGV[2] step name   ARGV[3] "1" if an rpc name is given, else "0"
-- ARGV[4] rpc name   ARGV[5] max attempts ("" = none)   ARGV[6] now (epoch ms)
-- ARGV[7..] the live-step fields to return
-- Reply: {1, step id, field, value, ...} claimed, {0} not claimable, {-1} no such step,
-- {-2} rpc name mismatch.
local id = redis.call('HGET', KEYS[3], ARGV[2])
if not id then return { -1 } end
local sp = id .. ':'
local cur = redis.call('HMGET', KEYS[2], sp .. 'status', sp .. 'attempt', sp .. 'rpc_name')
if not cur[1] then return { -1 } end
if ARGV[3] == '1' then
  if cur[3] ~= ARGV[4] then return { -2 } end
elseif cur[3] then
  return { -2 }
end
local now = ARGV[6]
if cur[1] == 'pending' or cur[1] == 'scheduled' then
  claim_live(KEYS[2], KEYS[4], id, cur[2], now)
elseif cur[1] == 'failed' and (ARGV[5] == '' or tonumber(cur[2]) < tonumber(ARGV[5])) then
  new_attempt(KEYS[1], KEYS[2], KEYS[4], KEYS[5], id, cur[2], 'running', now)
else
  return { 0 }
end
step_markers(KEYS[1], KEYS[6], KEYS[7], ARGV[1], id, cur[1], 'running', tonumber(now))
return present_pairs(KEYS[2], sp, argv_from(7), { 1, id })
