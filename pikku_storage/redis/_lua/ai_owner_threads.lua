-- list_threads with owners (read-only): merge the newest-first windows of several thread
-- indexes (resource:<R> or agent-resource:<A>:<R>, one per matched resource) (05 §2.2, §4).
-- KEYS[1..] the index zsets (members "<seq16>:<thread id>", score updated_at ms)
-- ARGV[1] how many entries to keep (offset + limit)
-- Reply: the kept members, in thread order (updated_at descending, then seq descending).
local n = tonumber(ARGV[1])
local entries = {}
for _, key in ipairs(KEYS) do
  local found = redis.call('ZRANGE', key, '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, n,
    'WITHSCORES')
  for i = 1, #found, 2 do
    entries[#entries + 1] = { tonumber(found[i + 1]), tonumber(string.sub(found[i], 1, AI_SEQ)),
      found[i] }
  end
end
table.sort(entries, function(a, b)
  if a[1] ~= b[1] then return a[1] > b[1] end
  return a[2] > b[2]
end)
local out = {}
for i = 1, math.min(n, #entries) do out[i] = entries[i][3] end
return out
