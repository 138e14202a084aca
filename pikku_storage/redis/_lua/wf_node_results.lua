-- get_node_results (read-only): results of the named steps that succeeded (01 §3.6).
-- KEYS[1] stepids   KEYS[2] steps
-- ARGV[1..] distinct step names
-- Reply: {name, result JSON, ...} for each succeeded step; an absent result (JSON null) is
-- returned as the text "null".
local out = {}
for _, name in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], name)
  if id then
    local v = redis.call('HMGET', KEYS[2], id .. ':status', id .. ':result')
    if v[1] == 'succeeded' then
      out[#out + 1] = name
      out[#out + 1] = v[2] or 'null'
    end
  end
end
return out
