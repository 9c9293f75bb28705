-- Holds seats for a user, all or nothing, replacing the user's previous hold on the show.
-- KEYS: loaded, held, sold, exp, fence, user key, request records, their index. ARGV: base, hold
-- id, user, ttl ms, max lifetime ms, request id ('' for none), fingerprint, seat indexes...
-- Answers HELD with the hold, whether it is the show's earliest deadline, and the id of the hold
-- it replaced ('' for none); or NOT_LOADED, MISMATCH, REPLAY with the first answer, TAKEN with
-- the seats.
-- A request's record (fingerprint and result) lives as long as a hold's TTL, in a hash field
-- indexed by when it may be forgotten; the sweeper removes it then. (One key per record with
-- its own TTL made Redis's active expiry stall for up to 25 ms once many were expiring.)
local base = ARGV[1]
-- Numbers are formatted as integers once (Lua's own number-to-string is a costly %.14g).
local function int(x) return string.format('%d', x) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, user, ttl, maxlife, rid, fp = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
-- A request id has no spaces (printable ASCII), so this field names one user's one request.
local rk = rid .. ' ' .. user
if rid ~= '' then
  local prev = redis.call('HGET', KEYS[7], rk)
  if prev then
    local sep = string.find(prev, '|', 1, true)
    if string.sub(prev, 1, sep - 1) ~= fp then return {'MISMATCH'} end
    return {'REPLAY', string.sub(prev, sep + 1)}
  end
end
local old = redis.call('GET', KEYS[6])
local oldseats = {}
local olds, oldt
if old then
  local f = redis.call('HMGET', base .. 'h:' .. old, 's', 't')
  if f[1] then
    olds, oldt = f[1], f[2]
    for s in string.gmatch(olds, '%d+') do oldseats[s] = true end
  else
    old = nil
  end
end
local taken = {}
for i = 8, #ARGV do
  local s = ARGV[i]
  if redis.call('GETBIT', KEYS[3], s) == 1 or (redis.call('GETBIT', KEYS[2], s) == 1 and not oldseats[s]) then
    taken[#taken + 1] = s
  end
end
if #taken > 0 then return {'TAKEN', table.concat(taken, ',')} end
if old then
  for s, _ in pairs(oldseats) do redis.call('SETBIT', KEYS[2], s, 0) end
  redis.call('DEL', base .. 'h:' .. old)
  redis.call('ZREM', KEYS[4], old)
  redis.call('PUBLISH', base .. 'ev', version(base) .. '|P|' .. old .. '|' .. oldt .. '|' .. int(now) .. '|' .. olds .. '|' .. user)
end
local token = int(redis.call('INCR', KEYS[5]))
local maxd = now + maxlife
local d = now + ttl
if d > maxd then d = maxd end
local ds, ns, ms = int(d), int(now), int(maxd)
local seats = {}
for i = 8, #ARGV do
  redis.call('SETBIT', KEYS[2], ARGV[i], 1)
  seats[#seats + 1] = ARGV[i]
end
local s = table.concat(seats, ',')
redis.call('HSET', base .. 'h:' .. id, 'u', user, 's', s, 't', token, 'd', ds, 'c', ns, 'm', ms)
redis.call('SET', KEYS[6], id)
redis.call('ZADD', KEYS[4], ds, id)
local hold = id .. '|' .. token .. '|' .. ds .. '|' .. ns .. '|' .. ms .. '|' .. s
if rid ~= '' then
  redis.call('HSET', KEYS[7], rk, fp .. '|' .. hold)
  redis.call('ZADD', KEYS[8], int(now + ttl), rk)
end
redis.call('PUBLISH', base .. 'ev', version(base) .. '|H|' .. id .. '|' .. token .. '|' .. ds .. '|' .. s .. '|' .. user)
-- Whether this hold is now the show's earliest deadline: only then must the global due index
-- (another hash slot, so another call) be lowered.
local first = redis.call('ZRANGE', KEYS[4], 0, 0)
return {'HELD', hold, (first[1] == id) and '1' or '0', old or ''}
