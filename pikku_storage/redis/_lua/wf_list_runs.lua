-- list_runs (read-only): a window of one run index, newest first, each run's record fields; the
-- one script that derives keys from members (01 §5.3): a member is "<seq20>:<run id>" and the
-- run key is ARGV[3] .. run id .. ARGV[4].
-- KEYS[1] the index zset (runs, wf:<w>, status:<s> or wfstatus:<s>:<w>)
-- ARGV[1] offset   ARGV[2] offset + limit - 1   ARGV[3] run key prefix   ARGV[4] run key suffix
-- Reply: one string, the fields run id, workflow, status, input, output, error, inline,
-- graph_hash, wire, created_at, updated_at, deterministic, planned_steps of each run in index order joined by NUL bytes (no
-- field can hold one: ids and names exclude U+0000, JSON text escapes it), "" for an absent
-- field (none can be empty when present); a run deleted since the index was read is left out.
-- One bulk string instead of 13 per run: the client splits it in one C call.
local FIELDS = {'workflow', 'status', 'input', 'output', 'error', 'inline', 'graph_hash', 'wire',
  'created_at', 'updated_at', 'deterministic', 'planned_steps'}
local members = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 'REV')
local out = {}
for _, m in ipairs(members) do
  local id = string.sub(m, WF_SEQ + 2)
  local values = redis.call('HMGET', ARGV[3] .. id .. ARGV[4], unpack(FIELDS))
  if values[1] then
    out[#out + 1] = id
    for i = 1, #FIELDS do out[#out + 1] = values[i] or '' end
  end
end
return table.concat(out, '\0')
