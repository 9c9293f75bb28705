-- A hold and its user. KEYS: hold. ARGV: hold id.
local f = redis.call('HMGET', KEYS[1], 'u', 's', 't', 'd', 'c', 'm')
if not f[1] then return {'HOLD_NOT_FOUND'} end
return {'OK', ARGV[1] .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[5] .. '|' .. f[6] .. '|' .. f[2], f[1]}
