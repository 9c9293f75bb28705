-- The live seat states of a show and its version. KEYS: loaded, held, sold, user key, version.
-- ARGV: base.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local held = redis.call('GET', KEYS[2]) or ''
local sold = redis.call('GET', KEYS[3]) or ''
return {'OK', held, sold, mine(ARGV[1], KEYS[4]), redis.call('GET', KEYS[5]) or '0'}
