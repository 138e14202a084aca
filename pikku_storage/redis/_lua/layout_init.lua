-- init: record the layout version of a namespace if none is recorded (00 §5); with ARGV[2]
-- given, move a namespace recorded at ARGV[2] (the migration done) to ARGV[1].
-- KEYS[1] layout key
-- ARGV[1] this library's layout version   ARGV[2] the version migrated from ("" = none)
-- Reply: the recorded version (a string).
if ARGV[2] ~= '' and redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
