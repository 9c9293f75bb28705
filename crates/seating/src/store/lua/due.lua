-- The global index of shows with deadlines (outside the per-show hash tags).
-- KEYS: due. ARGV: op ('lower', 'set', 'scan'), show or limit, deadline.
local op = ARGV[1]
if op == 'lower' then
  return redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[2])
elseif op == 'set' then
  if tonumber(ARGV[3]) < 0 then return redis.call('ZREM', KEYS[1], ARGV[2]) end
  return redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
