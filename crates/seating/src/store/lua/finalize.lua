-- Marks seats sold after the database committed the sale, and ends their hold.
-- KEYS: held, sold, exp, hold. ARGV: base, hold id, seat indexes...
local base, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[4], 'u', 's', 't', 'd')
if f[2] then
  for s in string.gmatch(f[2], '%d+') do redis.call('SETBIT', KEYS[1], s, 0) end
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[3], id)
  if redis.call('GET', base .. 'u:' .. f[1]) == id then redis.call('DEL', base .. 'u:' .. f[1]) end
end
local seats = {}
for i = 3, #ARGV do
  redis.call('SETBIT', KEYS[2], ARGV[i], 1)
  seats[#seats + 1] = ARGV[i]
end
redis.call('PUBLISH', base .. 'ev', version(base) .. '|S|' .. id .. '|' .. (f[3] or '0') .. '|' .. (f[4] or '0') .. '|' .. table.concat(seats, ',') .. '|' .. (f[1] or ''))
return 'OK'
