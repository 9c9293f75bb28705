-- Put before the scripts that read a user's hold on a show (redis.rs joins them).
-- The hold the user key names, as `id|token|deadline|created|max|seats`, or '' when there is none.
local function mine(base, user_key)
  local id = redis.call('GET', user_key)
  if not id then return '' end
  local f = redis.call('HMGET', base .. 'h:' .. id, 't', 'd', 'c', 'm', 's')
  if not f[1] then return '' end
  return id .. '|' .. f[1] .. '|' .. f[2] .. '|' .. f[3] .. '|' .. f[4] .. '|' .. f[5]
end
