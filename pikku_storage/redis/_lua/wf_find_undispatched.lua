-- find_undispatched_steps (read-only): a window of the undispatched zset (member
-- "<step id>:<run id>", score dispatch_since ms) in (pending_since, step id) order, strictly
-- after the `after` key, below the cutoff; one range, the `after` tie group read first
-- (05 D8, §3.5, §4).
-- KEYS[1] undispatched
-- ARGV[1] older_than (epoch ms)   ARGV[2] limit   ARGV[3] after's pending_since ms ("" = none)
-- ARGV[4] after's step id   ARGV[5] steps key prefix   ARGV[6] steps key suffix
-- Reply: per step: step id, run id, pending_since ms, step name, "1" and rpc name or "0" and
-- "" (steps deleted meanwhile left out).
local limit = tonumber(ARGV[2])
local found = {}
local low = '-inf'
local function step_of(m)
  local colon = string.find(m, ':', 1, true)
  return string.sub(m, 1, colon - 1), string.sub(m, colon + 1)
end
if ARGV[3] ~= '' then
  low = '(' .. ARGV[3]
  if tonumber(ARGV[3]) < tonumber(ARGV[1]) then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], ARGV[3], ARGV[3], 'BYSCORE')) do
      if #found >= limit then break end
      local step_id = step_of(m)
      if bytes_after(step_id, ARGV[4]) then found[#found + 1] = { m, ARGV[3] } end
    end
  end
end
if #found < limit then
  local rest = redis.call('ZRANGE', KEYS[1], low, '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0,
    limit - #found, 'WITHSCORES')
  for i = 1, #rest, 2 do found[#found + 1] = { rest[i], rest[i + 1] } end
end
local out = {}
for _, e in ipairs(found) do
  local step_id, run_id = step_of(e[1])
  local v = redis.call('HMGET', ARGV[5] .. run_id .. ARGV[6], step_id .. ':name',
    step_id .. ':rpc_name')
  if v[1] then
    out[#out + 1] = step_id
    out[#out + 1] = run_id
    out[#out + 1] = e[2]
    out[#out + 1] = v[1]
    out[#out + 1] = v[2] and '1' or '0'
    out[#out + 1] = v[2] or ''
  end
end
return out
