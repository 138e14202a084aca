-- Helpers prepended to every script by _scripts.py (all `local`: scripts create no globals).
-- Conventions: every key arrives in KEYS; numbers in ARGV are read with tonumber; an empty
-- ARGV string means "absent" wherever a value can never be empty; replies are integers,
-- strings or flat arrays of them, never nil inside an array.

-- zero-padded decimal of n, `width` digits (sequence numbers in members sort as bytes)
local function pad(n, width)
  return string.format('%0' .. width .. 'd', tonumber(n))
end

-- run `cmd key a1 a2 ...` over `list` in chunks, so unpack never meets its stack limit
local function chunked(cmd, key, list)
  local i = 1
  while i <= #list do
    local j = math.min(i + 999, #list)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end

-- HSET key (prefix .. ARGV[first]) ARGV[first + 1] ... for `count` field/value pairs;
-- returns the ARGV index after the last pair
local function hset_argv(key, prefix, first, count)
  if count > 0 then
    local args = {}
    for i = 0, count - 1 do
      args[#args + 1] = prefix .. ARGV[first + 2 * i]
      args[#args + 1] = ARGV[first + 2 * i + 1]
    end
    chunked('HSET', key, args)
  end
  return first + 2 * count
end

-- HMGET key (prefix .. f) for every f in `fields`; appends f, value to `out` for present ones
local function present_pairs(key, prefix, fields, out)
  local names = {}
  for i, f in ipairs(fields) do names[i] = prefix .. f end
  local values = redis.call('HMGET', key, unpack(names))
  for i, f in ipairs(fields) do
    if values[i] then
      out[#out + 1] = f
      out[#out + 1] = values[i]
    end
  end
  return out
end

-- appends #flat, then every element of the flat array `flat`, to `out`
local function append_counted(out, flat)
  out[#out + 1] = #flat
  for _, v in ipairs(flat) do out[#out + 1] = v end
  return out
end

-- the ids of a length-prefixed list "<bytes>:<id><bytes>:<id>..." (ids may hold any byte)
local function split_ids(s)
  local ids, pos = {}, 1
  while pos <= #s do
    local colon = string.find(s, ':', pos, true)
    local len = tonumber(string.sub(s, pos, colon - 1))
    ids[#ids + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return ids
end

-- true iff string a sorts after b by bytes (Lua's `<` follows the server's locale)
local function bytes_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

-- step statuses that keep a run from being stalled (05 §3.5)
local ACTIVE = { running = true, scheduled = true, suspended = true }

-- 05 §4 markers after a write of step `step_id` of run `run_id` at `now`, its status going
-- from `old` (nil: a new step) to `new`: the run's active_steps and activity_at, its entry in
-- the idle zset (running with no step in flight) and the step's in the undispatched zset
-- (pending in a running run, score its updated_at)
local function step_markers(run_key, idle_key, und_key, run_id, step_id, old, new, now)
  local r = redis.call('HMGET', run_key, 'status', 'active_steps', 'activity_at')
  if not r[1] then return end
  local active = tonumber(r[2] or '0')
  if old and ACTIVE[old] then active = active - 1 end
  if ACTIVE[new] then active = active + 1 end
  local at = math.max(tonumber(r[3] or '0'), now)
  redis.call('HSET', run_key, 'active_steps', active, 'activity_at', at)
  local member = step_id .. ':' .. run_id
  if r[1] == 'running' and new == 'pending' then redis.call('ZADD', und_key, now, member)
  else redis.call('ZREM', und_key, member) end
  if r[1] == 'running' and active == 0 then redis.call('ZADD', idle_key, at, run_id)
  else redis.call('ZREM', idle_key, run_id) end
end

-- 05 §4 markers of a whole run re-derived from its steps hash (a status change, the layout
-- migration): active_steps and activity_at (at least `floor`), idle and undispatched entries
local function run_markers(run_key, steps_key, idle_key, und_key, run_id, floor)
  local r = redis.call('HMGET', run_key, 'status', 'updated_at', 'activity_at')
  if not r[1] then return end
  local running = r[1] == 'running'
  local at = math.max(tonumber(r[2] or '0'), tonumber(r[3] or '0'), floor)
  local flat = redis.call('HGETALL', steps_key)
  local status, updated = {}, {}
  for i = 1, #flat, 2 do
    local colon = string.find(flat[i], ':', 1, true)
    local id, field = string.sub(flat[i], 1, colon - 1), string.sub(flat[i], colon + 1)
    if field == 'status' then status[id] = flat[i + 1]
    elseif field == 'updated_at' then updated[id] = tonumber(flat[i + 1]) end
  end
  local active = 0
  for id, s in pairs(status) do
    if ACTIVE[s] then active = active + 1 end
    if updated[id] and updated[id] > at then at = updated[id] end
    local member = id .. ':' .. run_id
    if running and s == 'pending' then redis.call('ZADD', und_key, updated[id], member)
    else redis.call('ZREM', und_key, member) end
  end
  redis.call('HSET', run_key, 'active_steps', active, 'activity_at', at)
  if running and active == 0 then redis.call('ZADD', idle_key, at, run_id)
  else redis.call('ZREM', idle_key, run_id) end
end

-- pending/scheduled -> running on the live step and its current attempt `n` (01 §3.5)
local function claim_live(steps_key, attempts_key, id, n, now)
  local sp, ap = id .. ':', id .. ':' .. n .. ':'
  redis.call('HSET', steps_key, sp .. 'status', 'running', sp .. 'running_at', now,
    sp .. 'updated_at', now)
  redis.call('HSET', attempts_key, ap .. 'status', 'running', ap .. 'running_at', now,
    ap .. 'updated_at', now)
end

-- attempt n + 1 of a step as `status` (pending or running), the live step's outcome, stamps
-- and child run cleared, its history entry appended (01 §3.5, 05 §3.2)
local function new_attempt(run_key, steps_key, attempts_key, history_key, id, n, status, now)
  local next_n = tonumber(n) + 1
  local attempt_seq = redis.call('HINCRBY', run_key, 'attempt_seq', 1)
  local sp, ap = id .. ':', id .. ':' .. next_n .. ':'
  redis.call('HDEL', steps_key, sp .. 'result', sp .. 'error', sp .. 'running_at',
    sp .. 'scheduled_at', sp .. 'succeeded_at', sp .. 'failed_at', sp .. 'child_run_id')
  redis.call('HSET', steps_key, sp .. 'attempt', next_n, sp .. 'status', status,
    sp .. 'updated_at', now)
  redis.call('HSET', attempts_key, ap .. 'status', status, ap .. 'created_at', now,
    ap .. 'updated_at', now)
  if status == 'running' then
    redis.call('HSET', steps_key, sp .. 'running_at', now)
    redis.call('HSET', attempts_key, ap .. 'running_at', now)
  end
  redis.call('ZADD', history_key, tonumber(now), pad(attempt_seq, WF_SEQ) .. ':' .. id .. ':' .. next_n)
end

-- ARGV[first..] as a list (the fields a script returns)
local function argv_from(first)
  local fields = {}
  for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
  return fields
end
