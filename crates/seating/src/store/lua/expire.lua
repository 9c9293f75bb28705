-- Expires a show's holds whose deadline passed; returns how many and the next deadline (-1: none).
-- KEYS: held, exp. ARGV: base, limit.
local base = ARGV[1]
-- Numbers are formatted as integers once (Lua's own number-to-string is a costly %.14g).
local function int(x) return string.format('%d', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now), 'LIMIT', 0, ARGV[2])
local n = 0
for _, id in ipairs(due) do
  local hk = base .. 'h:' .. id
  local f = redis.call('HMGET', hk, 'u', 's', 't', 'd')
  if f[2] then
    for s in string.gmatch(f[2], '%d+') do redis.call('SETBIT', KEYS[1], s, 0) end
    redis.call('DEL', hk)
    if redis.call('GET', base .. 'u:' .. f[1]) == id then redis.call('DEL', base .. 'u:' .. f[1]) end
    redis.call('PUBLISH', base .. 'ev', 'X|' .. id .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[2] .. '|' .. f[1])
    n = n + 1
  end
  redis.call('ZREM', KEYS[2], id)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {n, nxt[2] or '-1'}
