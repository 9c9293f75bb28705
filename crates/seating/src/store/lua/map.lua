-- The live seat states of a show and its version. KEYS: loaded, held, sold, user key, version.
-- ARGV: base.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local held = redis.call('GET', KEYS[2]) or ''
local sold = redis.call('GET', KEYS[3]) or ''
local mine = ''
local id = redis.call('GET', KEYS[4])
if id then
  local f = redis.call('HMGET', ARGV[1] .. 'h:' .. id, 't', 'd', 'c', 'm', 's')
  if f[1] then mine = id .. '|' .. f[1] .. '|' .. f[2] .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[5] end
end
return {'OK', held, sold, mine, redis.call('GET', KEYS[5]) or '0'}
