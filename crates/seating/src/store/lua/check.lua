-- May a hold be confirmed? KEYS: hold. ARGV: hold id, fencing token.
local f = redis.call('HMGET', KEYS[1], 'u', 's', 't', 'd', 'c', 'm')
if not f[1] then return {'HOLD_NOT_FOUND'} end
if f[3] ~= ARGV[2] then return {'STALE_TOKEN'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(f[4]) <= now then return {'HOLD_EXPIRED'} end
return {'OK', ARGV[1] .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[5] .. '|' .. f[6] .. '|' .. f[2], f[1]}
