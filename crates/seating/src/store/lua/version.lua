-- Put before every script that publishes a show's events (redis.rs joins them).
-- The show's next event version: each event of a show is one more than the one before, and
-- watchers order events by it (SeatEvent, Cursor). load.lua starts a show's run at its load time
-- in microseconds; should the key be gone, a new run starts from now, above every version
-- handed out before. (Lua numbers are doubles: exact up to 2^53, some 285 years of microseconds.)
local function version(base)
  local v = redis.call('INCR', base .. 'ver')
  if v == 1 then
    local t = redis.call('TIME')
    v = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', base .. 'ver', string.format('%d', v))
  end
  return string.format('%d', v)
end
