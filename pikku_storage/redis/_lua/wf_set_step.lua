-- set_step_running / _scheduled / _result / _error: an unconditional transition of the live
-- step and its current attempt, in one write (01 §3.4), with markers (05 §4).
-- KEYS[1] steps   KEYS[2] attempts   KEYS[3] run hash   KEYS[4] idle   KEYS[5] undispatched
-- ARGV[1] step id   ARGV[2] status   ARGV[3] stamp field   ARGV[4] now (epoch ms)
-- ARGV[5] "1" to write the outcome below, "0" to keep it   ARGV[6] result JSON ("" = none)
-- ARGV[7] error JSON ("" = none)   ARGV[8] run id
-- Reply: 1 done, 0 step missing.
local id = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], id .. ':attempt', id .. ':status')
local n = cur[1]
if not n then return 0 end
local targets = { { KEYS[1], id .. ':' }, { KEYS[2], id .. ':' .. n .. ':' } }
for _, t in ipairs(targets) do
  local key, p = t[1], t[2]
  redis.call('HSET', key, p .. 'status', ARGV[2], p .. ARGV[3], ARGV[4], p .. 'updated_at', ARGV[4])
  if ARGV[5] == '1' then
    if ARGV[6] == '' then redis.call('HDEL', key, p .. 'result')
    else redis.call('HSET', key, p .. 'result', ARGV[6]) end
    if ARGV[7] == '' then redis.call('HDEL', key, p .. 'error')
    else redis.call('HSET', key, p .. 'error', ARGV[7]) end
  end
end
step_markers(KEYS[3], KEYS[4], KEYS[5], ARGV[8], id, cur[2], ARGV[2], tonumber(ARGV[4]))
return 1
