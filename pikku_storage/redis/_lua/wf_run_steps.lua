-- get_run_steps / get_run_history (read-only): a run's steps with one snapshot (01 §4).
-- KEYS[1] order or history zset   KEYS[2] steps   KEYS[3] attempts, or absent
-- ARGV: none
-- Reply: {#members, members in score order..., #flat, HGETALL steps..., [#flat, HGETALL
-- attempts...]}.
local out = append_counted({}, redis.call('ZRANGE', KEYS[1], 0, -1))
append_counted(out, redis.call('HGETALL', KEYS[2]))
if KEYS[3] then append_counted(out, redis.call('HGETALL', KEYS[3])) end
return out
