-- Marks a show's sold seats (from the database) and the show as loaded, and starts its run of
-- event versions at the load time in microseconds (see version.lua) unless one runs.
-- KEYS: loaded, sold, version. ARGV: seat indexes...
for i = 1, #ARGV do redis.call('SETBIT', KEYS[2], ARGV[i], 1) end
redis.call('SET', KEYS[1], '1')
if redis.call('EXISTS', KEYS[3]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[3], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
end
return 'OK'
