-- The earliest deadline of a show (-1: none). KEYS: exp.
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return nxt[2] or '-1'
