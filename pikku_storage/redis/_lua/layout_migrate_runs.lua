-- layout 1 -> 2, one batch of running runs: re-derive each run's markers from its steps and
-- fill the idle and undispatched zsets (05 D14, §4); idempotent, so concurrent inits agree.
-- KEYS[1] idle   KEYS[2] undispatched, then per run: run hash, steps hash
-- ARGV: the run ids, in KEYS order
-- Reply: how many runs were migrated.
for i = 1, #ARGV do
  run_markers(KEYS[1 + 2 * i], KEYS[2 + 2 * i], KEYS[1], KEYS[2], ARGV[i], 0)
end
return #ARGV
