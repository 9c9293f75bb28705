-- Releases a user's hold. KEYS: held, exp, user key, hold. ARGV: base, hold id, user.
local base, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[4], 'u', 's', 't', 'd', 'c', 'm')
if not f[1] or f[1] ~= ARGV[3] then return {'HOLD_NOT_FOUND'} end
for s in string.gmatch(f[2], '%d+') do redis.call('SETBIT', KEYS[1], s, 0) end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[2], id)
if redis.call('GET', KEYS[3]) == id then redis.call('DEL', KEYS[3]) end
redis.call('PUBLISH', base .. 'ev', version(base) .. '|R|' .. id .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[2] .. '|' .. f[1])
return {'OK', id .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[5] .. '|' .. f[6] .. '|' .. f[2], f[1]}
