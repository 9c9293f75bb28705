-- Counts a show among the user's shows with a hold, unless the user is at the cap: run before
-- the hold script, in the user's own hash slot (the holds of different shows live in different
-- slots, so the hold script cannot count them).
-- KEYS: the user's shows (sorted set: show -> when it was claimed, Unix ms from TIME, strictly
-- increasing per show). ARGV: show, cap, how long a claim counts at most (ms).
-- Returns {'OK', claimed, new ('1' when the show was not counted before)} or {'FULL', show,
-- claimed, ...} with every show counted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local show, cap, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- A claim this old has outlived every hold made after it.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - keep))
local old = redis.call('ZSCORE', KEYS[1], show)
if not old and redis.call('ZCARD', KEYS[1]) >= cap then
  local full = {'FULL'}
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #all do full[#full + 1] = all[i] end
  return full
end
local claimed = now
if old and tonumber(old) >= now then claimed = tonumber(old) + 1 end
local c = string.format('%d', claimed)
redis.call('ZADD', KEYS[1], c, show)
redis.call('PEXPIRE', KEYS[1], keep)
return {'OK', c, old and '0' or '1'}
