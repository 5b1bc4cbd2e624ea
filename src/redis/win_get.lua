-- win_get.lua - reads one window entry (win_learn.lua) with Redis's time,
-- for the gateway to judge (session_cache.h's cache_judge): the decision
-- of a send-freeform and GET /admin/sessions. Writes nothing.
--
-- KEYS[1]  the entry: <base>win:<sender>:<phone key>
-- ARGV[1]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: {now in ms, the entry or "" when there is none}.
local now
if ARGV[1] ~= nil and ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
  if now == nil then return redis.error_reply('win_get: bad now') end
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
return {math.floor(now / 1000), redis.call('GET', KEYS[1]) or ''}
