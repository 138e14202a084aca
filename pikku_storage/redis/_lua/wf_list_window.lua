-- list_runs on a cluster (read-only): the first ARGV[1] members of one bucket's run index,
-- newest first, with their scores and, if ARGV[2] is "1", each run's record fields; the client
-- merges the buckets' windows (01 §5.3). Run keys are ARGV[3] .. run id .. ARGV[4], in the
-- slot of KEYS[1]; a member is "<seq>:<run id>" (WF_SEQ digits).
-- KEYS[1] the bucket's index zset (runs, wf:<w>, status:<s> or wfstatus:<s>:<w>)
-- ARGV[1] how many members   ARGV[2] "1" with records, "0" members only
-- ARGV[3] run key prefix   ARGV[4] run key suffix
-- Reply: one string of NUL-separated items: per member its score and the member; with records
-- then "1" and the 12 fields run id-less (workflow ... planned_steps, "" if absent) when the
-- run exists, or "" and 12 empty items when it was deleted since it was indexed.
local FIELDS = {'workflow', 'status', 'input', 'output', 'error', 'inline', 'graph_hash', 'wire',
  'created_at', 'updated_at', 'deterministic', 'planned_steps'}
local found = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'REV', 'WITHSCORES')
local records = ARGV[2] == '1'
local out = {}
for i = 1, #found, 2 do
  local m = found[i]
  out[#out + 1] = found[i + 1]
  out[#out + 1] = m
  if records then
    local values = redis.call('HMGET', ARGV[3] .. string.sub(m, WF_SEQ + 2) .. ARGV[4],
      unpack(FIELDS))
    out[#out + 1] = values[1] and '1' or ''
    for j = 1, #FIELDS do out[#out + 1] = values[j] or '' end
  end
end
return table.concat(out, '\0')
