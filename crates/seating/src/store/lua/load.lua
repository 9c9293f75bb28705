-- Marks a show's sold seats (from the database) and the show as loaded. KEYS: loaded, sold.
-- ARGV: seat indexes...
for i = 1, #ARGV do redis.call('SETBIT', KEYS[2], ARGV[i], 1) end
redis.call('SET', KEYS[1], '1')
return 'OK'
