-- The earliest deadline of a show, of its holds and of its request records (-1: none).
-- KEYS: exp, request record index.
local a = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
local b = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
if a and b and tonumber(b) < tonumber(a) then return b end
return a or b or '-1'
