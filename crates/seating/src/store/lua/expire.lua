-- Expires a show's holds whose deadline passed and forgets the request records whose time is
-- up, up to `limit` of each. Returns the ids of the holds expired, the show's next deadline (-1:
-- none), and 1 if a limit was reached (more may be due now).
-- KEYS: held, exp, request records, their index. ARGV: base, limit.
local base = ARGV[1]
-- Numbers are formatted as integers once (Lua's own number-to-string is a costly %.14g).
local function int(x) return string.format('%d', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now), 'LIMIT', 0, ARGV[2])
local expired = {}
for _, id in ipairs(due) do
  local hk = base .. 'h:' .. id
  local f = redis.call('HMGET', hk, 'u', 's', 't', 'd')
  if f[2] then
    for s in string.gmatch(f[2], '%d+') do redis.call('SETBIT', KEYS[1], s, 0) end
    redis.call('DEL', hk)
    if redis.call('GET', base .. 'u:' .. f[1]) == id then redis.call('DEL', base .. 'u:' .. f[1]) end
    redis.call('PUBLISH', base .. 'ev', version(base) .. '|X|' .. id .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[2] .. '|' .. f[1])
    expired[#expired + 1] = id
  end
  redis.call('ZREM', KEYS[2], id)
end
local more = (#due >= tonumber(ARGV[2])) and 1 or 0
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', int(now), 'LIMIT', 0, ARGV[2])
if #gone > 0 then
  redis.call('HDEL', KEYS[3], unpack(gone))
  -- They are the first #gone of the index by rank (read from -inf).
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, #gone - 1)
  if #gone >= tonumber(ARGV[2]) then more = 1 end
end
local a = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
local b = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')[2]
local nxt = a or b or '-1'
if a and b and tonumber(b) < tonumber(a) then nxt = b end
return {expired, nxt, more}
