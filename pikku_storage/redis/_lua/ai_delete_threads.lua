-- delete_thread and one prune_threads batch: remove whole threads with messages, runs,
-- scores, approvals, decisions, thread memory and every index entry, each thread re-checked
-- first (02 §2, §4, §5.4, 05 §2.1, §4).
-- KEYS[1] threads   KEYS[2] agent names   KEYS[3] run-thread   KEYS[4] resources, then per
--   thread: its 10 data keys (thread, msgs, msg, msg-ids, calls, results, memory, runs, agents,
--   undelivered), resource:<R>, then per agent agent:<A> and agent-resource:<A>:<R>, per run
--   its hash, pending, decisions and scores, per pending approval approval:<C>
-- ARGV[1] "delete" or "prune"   ARGV[2] prune cutoff (epoch ms; "" for delete), then per
--   thread: thread id, seq, rev, resource id, a, a agent names, r, r run ids, p, p run
--   positions (1-based among the thread's runs, one per approval key)
-- Reply: delete: 1 deleted, 0 missing, -1 changed since the read (retry); prune: how many
-- threads were deleted (one updated meanwhile, or changed, is kept).
local prune = ARGV[1] == 'prune'
local cutoff = tonumber(ARGV[2])
local kp, ap = 5, 3
local deleted = 0
while ap <= #ARGV do
  local id, seq, rev, resource = ARGV[ap], ARGV[ap + 1], ARGV[ap + 2], ARGV[ap + 3]
  local a = tonumber(ARGV[ap + 4])
  local agents_at = ap + 5
  local r = tonumber(ARGV[agents_at + a])
  local runs_at = agents_at + a + 1
  local p = tonumber(ARGV[runs_at + r])
  local approvals_at = runs_at + r + 1
  local data_at, agent_keys_at = kp, kp + 11
  local run_keys_at = agent_keys_at + 2 * a
  local approval_keys_at = run_keys_at + 4 * r
  kp = approval_keys_at + p
  ap = approvals_at + p
  local h = redis.call('HMGET', KEYS[data_at], 'seq', 'rev', 'updated_at')
  local keep = not h[1]
  if not keep and (h[1] ~= seq or h[2] ~= rev) then
    if not prune then return -1 end
    keep = true
  end
  if not keep and prune and tonumber(h[3]) >= cutoff then keep = true end
  if not keep then
    local member = pad(seq, AI_SEQ) .. ':' .. id
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[data_at + 10], member)
    if redis.call('ZCARD', KEYS[data_at + 10]) == 0 then redis.call('ZREM', KEYS[4], resource) end
    for i = 0, a - 1 do
      local by_agent = KEYS[agent_keys_at + 2 * i]
      redis.call('ZREM', by_agent, member)
      redis.call('ZREM', KEYS[agent_keys_at + 2 * i + 1], member)
      if redis.call('ZCARD', by_agent) == 0 then redis.call('ZREM', KEYS[2], ARGV[agents_at + i]) end
    end
    local run_members = {}
    for i = 0, r - 1 do
      local run_seq = redis.call('HGET', KEYS[run_keys_at + 4 * i], 'seq')
      run_members[i + 1] = pad(run_seq or 0, AI_SEQ) .. ':' .. ARGV[runs_at + i]
    end
    for i = 0, p - 1 do
      redis.call('ZREM', KEYS[approval_keys_at + i], run_members[tonumber(ARGV[approvals_at + i])])
    end
    local run_ids = {}
    for i = 0, r - 1 do run_ids[i + 1] = ARGV[runs_at + i] end
    chunked('HDEL', KEYS[3], run_ids)
    for i = data_at, data_at + 9 do redis.call('UNLINK', KEYS[i]) end
    for i = run_keys_at, run_keys_at + 4 * r - 1 do redis.call('UNLINK', KEYS[i]) end
    deleted = deleted + 1
  end
end
return deleted
