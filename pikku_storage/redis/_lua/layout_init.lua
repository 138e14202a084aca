-- init: record the layout version of a namespace if none is recorded (00 §5).
-- KEYS[1] layout key
-- ARGV[1] this library's layout version
-- Reply: the recorded version (a string).
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
