-- Moves a hold's deadline to now + extension, capped at its maximum, never earlier.
-- KEYS: exp, hold. ARGV: base, hold id, user, extension ms.
local base, id = ARGV[1], ARGV[2]
-- Numbers are formatted as integers once (Lua's own number-to-string is a costly %.14g).
local function int(x) return string.format('%d', x) end
local f = redis.call('HMGET', KEYS[2], 'u', 's', 't', 'd', 'c', 'm')
if not f[1] or f[1] ~= ARGV[3] then return {'HOLD_NOT_FOUND'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local d = tonumber(f[4])
if d <= now then return {'HOLD_EXPIRED'} end
local nd = now + tonumber(ARGV[4])
local m = tonumber(f[6])
if nd > m then nd = m end
if nd > d then
  d = nd
  redis.call('HSET', KEYS[2], 'd', int(d))
  redis.call('ZADD', KEYS[1], int(d), id)
  redis.call('PUBLISH', base .. 'ev', version(base) .. '|E|' .. id .. '|' .. f[3] .. '|' .. int(d) .. '|' .. f[2] .. '|' .. f[1])
end
return {'OK', id .. '|' .. f[3] .. '|' .. int(d) .. '|' .. f[5] .. '|' .. f[6] .. '|' .. f[2]}
