-- get_step_state (read-only): the live step of a run by name, in one snapshot (01 §3.3).
-- KEYS[1] stepids   KEYS[2] steps
-- ARGV[1] step name   ARGV[2..] the live-step fields to return
-- Reply: {} no such step, else {step id, field, value, ...} for the present fields.
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return {} end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
return present_pairs(KEYS[2], id .. ':', fields, { id })
