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
