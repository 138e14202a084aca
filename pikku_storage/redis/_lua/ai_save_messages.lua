-- save_messages: check stored duplicates and results, then store the batch with consecutive
-- sequence numbers and move the thread in every index it is listed in (02 §2, §5.4, 05 §2.3).
-- KEYS[1] thread   KEYS[2] msgs   KEYS[3] msg   KEYS[4] msg-ids   KEYS[5] calls   KEYS[6] results
-- KEYS[7] undelivered set   KEYS[8] agents set   KEYS[9] threads   KEYS[10] resource:<R>, then
--   per agent the client read: agent:<A>, agent-resource:<A>:<R>
-- ARGV[1] thread id   ARGV[2] resource id the client read   ARGV[3] now (epoch ms)
-- ARGV[4] a, then a agent names; then m, then per message: id, created_at (epoch ms), blob,
--   its call ids length-prefixed ("" = none); then e, e result ids of calls stored earlier;
--   then r, r triples: call id, result text, "1" undelivered or "0" delivered
-- Reply: {1} stored, {-1} no thread, {-2} thread or agents changed since read (retry),
-- {2, id} message id stored, {3, id} tool call id stored, {4, id} result without a call.
local h = redis.call('HMGET', KEYS[1], 'resource_id', 'seq')
if not h[1] then return { -1 } end
if h[1] ~= ARGV[2] then return { -2 } end
local a = tonumber(ARGV[4])
if redis.call('SCARD', KEYS[8]) ~= a then return { -2 } end
for i = 1, a do
  if redis.call('SISMEMBER', KEYS[8], ARGV[4 + i]) == 0 then return { -2 } end
end
local pos = 5 + a
local m = tonumber(ARGV[pos])
local msgs = {}
-- the order of MessageBatch.check_stored: every stored message id, then every stored call id
for j = 1, m do
  local id = ARGV[pos + 4 * (j - 1) + 1]
  if redis.call('HEXISTS', KEYS[4], id) == 1 then return { 2, id } end
end
for j = 1, m do
  local b = pos + 4 * (j - 1)
  local calls = split_ids(ARGV[b + 4])
  for _, c in ipairs(calls) do
    if redis.call('HEXISTS', KEYS[5], c) == 1 then return { 3, c } end
  end
  msgs[j] = { ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], calls }
end
pos = pos + 4 * m + 1
local e = tonumber(ARGV[pos])
for i = 1, e do
  if redis.call('HEXISTS', KEYS[5], ARGV[pos + i]) == 0 then return { 4, ARGV[pos + i] } end
end
pos = pos + e + 1
local first = redis.call('HINCRBY', KEYS[1], 'msg_seq', m) - m
for j, msg in ipairs(msgs) do
  local s = pad(first + j, AI_SEQ)
  redis.call('ZADD', KEYS[2], tonumber(msg[2]), s)
  redis.call('HSET', KEYS[3], s, msg[3])
  if msg[4] ~= '' then redis.call('HSET', KEYS[3], s .. ':calls', msg[4]) end
  redis.call('HSET', KEYS[4], msg[1], s)
  for _, c in ipairs(msg[5]) do redis.call('HSET', KEYS[5], c, s) end
end
for i = 0, tonumber(ARGV[pos]) - 1 do
  local b = pos + 1 + 3 * i
  redis.call('HSET', KEYS[6], ARGV[b], ARGV[b + 1])
  if ARGV[b + 2] == '1' then redis.call('SADD', KEYS[7], ARGV[b])
  else redis.call('SREM', KEYS[7], ARGV[b]) end
end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
local member = pad(h[2], AI_SEQ) .. ':' .. ARGV[1]
for i = 9, #KEYS do redis.call('ZADD', KEYS[i], now, member) end
return { 1 }
