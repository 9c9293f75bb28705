-- Puts sold seats back on sale after the database deleted their sale (a cancelled booking).
-- KEYS: sold. ARGV: base, seat indexes...
local base = ARGV[1]
local seats = {}
for i = 2, #ARGV do
  redis.call('SETBIT', KEYS[1], ARGV[i], 0)
  seats[#seats + 1] = ARGV[i]
end
redis.call('PUBLISH', base .. 'ev', version(base) .. '|U||0|0|' .. table.concat(seats, ',') .. '|')
return 'OK'
