-- Stops counting a show among the user's shows with a hold: only the claim that was seen
-- (a later claim of the show, by a hold still on its way, stays) and only once it is at least
-- a given age (Unix ms from TIME; 0 for any age).
-- KEYS: the user's shows. ARGV: show, claimed, minimum age (ms). Returns 1 when removed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
local age = tonumber(ARGV[3])
if age > 0 and now - tonumber(score) < age then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
