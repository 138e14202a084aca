-- get_messages (read-only): the window of stored messages, their blobs and the results of
-- their calls, in one snapshot; the work follows the window, not the thread (02 §2, §5.4).
-- KEYS[1] msgs   KEYS[2] msg   KEYS[3] msg-ids   KEYS[4] results   KEYS[5] undelivered set
-- ARGV[1] last_n ("" = all)   ARGV[2] cursor message id ("" = none)
-- Reply: per message in stored order: blob, #flat, then call id, result, flag ("1"
-- undelivered, else "0") per answered call.
local seqs
if ARGV[2] ~= '' then
  local s = redis.call('HGET', KEYS[3], ARGV[2])
  if not s then return {} end
  local rank = redis.call('ZRANK', KEYS[1], s)
  if rank == 0 then return {} end
  seqs = redis.call('ZRANGE', KEYS[1], math.max(0, rank - tonumber(ARGV[1])), rank - 1)
elseif ARGV[1] ~= '' then
  seqs = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
else
  seqs = redis.call('ZRANGE', KEYS[1], 0, -1)
end
-- every blob and call list in one HMGET per 500 messages, not one per message
local fields = {}
for _, s in ipairs(seqs) do
  fields[#fields + 1] = s
  fields[#fields + 1] = s .. ':calls'
end
local v = {}
local at = 1
while at <= #fields do
  local last = math.min(at + 999, #fields)
  local got = redis.call('HMGET', KEYS[2], unpack(fields, at, last))
  for k = 1, #got do v[at + k - 1] = got[k] end
  at = last + 1
end
local out = {}
for n = 1, #seqs do
  out[#out + 1] = v[2 * n - 1]
  local answered = {}
  if v[2 * n] then
    local ids = split_ids(v[2 * n])
    local results = redis.call('HMGET', KEYS[4], unpack(ids))
    for i, id in ipairs(ids) do
      if results[i] then
        answered[#answered + 1] = id
        answered[#answered + 1] = results[i]
        answered[#answered + 1] = redis.call('SISMEMBER', KEYS[5], id)
      end
    end
  end
  append_counted(out, answered)
end
return out
