-- list_runs on a cluster, second read (read-only): the record fields of the given runs of one
-- bucket, after the client merged the buckets' index windows (01 §5.3). Run keys are
-- ARGV[1] .. run id .. ARGV[2], in the slot of KEYS[1].
-- KEYS[1] the bucket's runs index (declares the slot; not read)
-- ARGV[1] run key prefix   ARGV[2] run key suffix   ARGV[3..] run ids
-- Reply: one string as `wf_list_runs` gives: per run present, its id and 12 fields joined by
-- NUL bytes ("" for an absent field), in ARGV order; a run deleted meanwhile is left out.
local FIELDS = {'workflow', 'status', 'input', 'output', 'error', 'inline', 'graph_hash', 'wire',
  'created_at', 'updated_at', 'deterministic', 'planned_steps'}
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local values = redis.call('HMGET', ARGV[1] .. id .. ARGV[2], unpack(FIELDS))
  if values[1] then
    out[#out + 1] = id
    for j = 1, #FIELDS do out[#out + 1] = values[j] or '' end
  end
end
return table.concat(out, '\0')
