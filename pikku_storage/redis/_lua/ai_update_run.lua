-- update_run: change the given fields of a run; with a new pending set, replace it by
-- difference (kept entries are rewritten in place, dropped ones leave the approval index)
-- (02 §3, §5.4).
-- KEYS[1] run hash   KEYS[2] run pending   KEYS[3] thread, then approval:<C> per known id
-- ARGV[1] run id   ARGV[2] "1" to replace the pending set, else "0"
-- ARGV[3] n, then n field/value pairs to set; then d, d fields to delete; then k, k known
--   tool call ids (the stored set the client read plus the new ones; approval key of the
--   i-th is KEYS[3 + i]); then p, then per new pending entry: its index among the known
--   ids as a KEYS index (3 + i), its tool call id, its entry JSON
-- Reply: 1 done, 0 no such run, -1 the pending set gained an id since the read (retry).
local r = redis.call('HMGET', KEYS[1], 'seq', 'created_at')
if not r[1] then return 0 end
local pos = 3
local n = tonumber(ARGV[pos])
local sets = pos + 1
pos = pos + 2 * n + 1
local d = tonumber(ARGV[pos])
local dels = pos + 1
pos = pos + d + 1
local k = tonumber(ARGV[pos])
local known = {}
for i = 1, k do known[ARGV[pos + i]] = 3 + i end
pos = pos + k + 1
local replace = ARGV[2] == '1'
local current = {}
if replace then
  current = redis.call('HKEYS', KEYS[2])
  for _, c in ipairs(current) do
    if not known[c] then return -1 end
  end
end
hset_argv(KEYS[1], '', sets, n)
for i = 0, d - 1 do redis.call('HDEL', KEYS[1], ARGV[dels + i]) end
if replace then
  local member = pad(r[1], AI_SEQ) .. ':' .. ARGV[1]
  local p = tonumber(ARGV[pos])
  local wanted = {}
  for i = 0, p - 1 do
    local b = pos + 1 + 3 * i
    wanted[ARGV[b + 1]] = true
    redis.call('HSET', KEYS[2], ARGV[b + 1], ARGV[b + 2])
    redis.call('ZADD', KEYS[tonumber(ARGV[b])], tonumber(r[2]), member)
  end
  for _, c in ipairs(current) do
    if not wanted[c] then
      redis.call('HDEL', KEYS[2], c)
      redis.call('ZREM', KEYS[known[c]], member)
    end
  end
  redis.call('HINCRBY', KEYS[3], 'rev', 1)
end
return 1
