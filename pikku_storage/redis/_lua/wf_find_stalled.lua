-- find_stalled_runs (read-only): a window of the idle zset (member run id, score activity_at
-- ms) in (idle_since, run id) order, strictly after the `after` key, below the cutoff; one
-- range, the `after` tie group read first (05 D8, §3.5, §4).
-- KEYS[1] idle
-- ARGV[1] older_than (epoch ms)   ARGV[2] limit   ARGV[3] after's idle_since ms ("" = none)
-- ARGV[4] after's run id   ARGV[5] run key prefix   ARGV[6] run key suffix
-- Reply: per run: run id, idle_since ms, workflow (runs deleted meanwhile left out).
local limit = tonumber(ARGV[2])
local cutoff = '(' .. ARGV[1]
local found = {}
local low = '-inf'
if ARGV[3] ~= '' then
  low = '(' .. ARGV[3]
  if tonumber(ARGV[3]) < tonumber(ARGV[1]) then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], ARGV[3], ARGV[3], 'BYSCORE')) do
      if #found >= limit then break end
      if bytes_after(m, ARGV[4]) then found[#found + 1] = { m, ARGV[3] } end
    end
  end
end
if #found < limit then
  local rest = redis.call('ZRANGE', KEYS[1], low, cutoff, 'BYSCORE', 'LIMIT', 0,
    limit - #found, 'WITHSCORES')
  for i = 1, #rest, 2 do found[#found + 1] = { rest[i], rest[i + 1] } end
end
local out = {}
for _, e in ipairs(found) do
  local workflow = redis.call('HGET', ARGV[5] .. e[1] .. ARGV[6], 'workflow')
  if workflow then
    out[#out + 1] = e[1]
    out[#out + 1] = e[2]
    out[#out + 1] = workflow
  end
end
return out
