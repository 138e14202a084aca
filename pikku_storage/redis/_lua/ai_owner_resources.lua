-- list_threads with owners (read-only): the distinct resource ids matching any owner, each an
-- exact id or one under "<owner>:" (05 D3, §2.2, §4); no pattern matching, only BYLEX ranges.
-- KEYS[1] resources (raw ids, scores 0)
-- ARGV: per owner: the owner, the range's low bound "<owner>:", its high bound "<owner>;"
-- Reply: the matched resource ids, each once.
local seen, out = {}, {}
local function add(r)
  if not seen[r] then
    seen[r] = true
    out[#out + 1] = r
  end
end
for i = 1, #ARGV, 3 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then add(ARGV[i]) end
  for _, r in ipairs(redis.call('ZRANGE', KEYS[1], '[' .. ARGV[i + 1], '(' .. ARGV[i + 2],
    'BYLEX')) do
    add(r)
  end
end
return out
