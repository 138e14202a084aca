-- delete_run and one prune_runs batch: remove whole runs with their index entries, step
-- references and name count, each run re-checked first (01 §4, D7).
-- KEYS[1] runs   KEYS[2] names   KEYS[3] namecount   KEYS[4] steprefs   KEYS[5] idle
-- KEYS[6] undispatched, then 11 keys per run:
--   run, state, steps, stepids, order, attempts, history, status:<s>, wfstatus:<s>:<w>,
--   updated:<s>, wf:<w>
-- ARGV[1] "delete" or "prune"   ARGV[2] prune cutoff (epoch ms; "" for delete), then 4 per run:
--   run id, the status the client read, the rev the client read, workflow
-- Reply: delete: 1 deleted, 0 missing, -1 changed since the client read it (retry);
-- prune: how many runs this call deleted (one whose status or updated_at no longer
-- qualifies is kept).
local prune = ARGV[1] == 'prune'
local cutoff = tonumber(ARGV[2])
local deleted = 0
local runs = (#KEYS - 6) / 11
for r = 0, runs - 1 do
  local k = 6 + 11 * r
  local a = 2 + 4 * r
  local id, status, rev, workflow = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local cur = redis.call('HMGET', KEYS[k + 1], 'status', 'rev', 'updated_at', 'seq')
  local keep = not cur[1] or cur[1] ~= status
  if not keep and prune then keep = tonumber(cur[3]) >= cutoff end
  if not keep and not prune and cur[2] ~= rev then return -1 end
  if not keep then
    local member = pad(cur[4], WF_SEQ) .. ':' .. id
    redis.call('ZREM', KEYS[1], member)
    for i = 8, 11 do redis.call('ZREM', KEYS[k + i], member) end
    local step_ids = redis.call('HVALS', KEYS[k + 4])
    chunked('HDEL', KEYS[4], step_ids)
    redis.call('ZREM', KEYS[5], id)
    local members = {}
    for i, s in ipairs(step_ids) do members[i] = s .. ':' .. id end
    chunked('ZREM', KEYS[6], members)
    for i = 1, 7 do redis.call('UNLINK', KEYS[k + i]) end
    if redis.call('HINCRBY', KEYS[3], workflow, -1) <= 0 then
      redis.call('HDEL', KEYS[3], workflow)
      redis.call('ZREM', KEYS[2], workflow)
    end
    deleted = deleted + 1
  elseif not prune and cur[1] then
    return -1
  end
end
return deleted
