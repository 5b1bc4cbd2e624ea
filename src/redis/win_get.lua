-- win_get.lua - reads one window entry (win_learn.lua) with Redis's time,
-- for the gateway to judge (session_cache.h's cache_judge): the decision
-- of a send-freeform and GET /admin/sessions. Writes nothing.
--
-- KEYS[1]  the entry: <base>win:<sender>:<phone key>
-- ARGV[1]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: {now in ms, the entry or "" when there is none}.
local now, bad = now_us(ARGV[1], 'win_get')
if bad then return bad end
return {math.floor(now / 1000), redis.call('GET', KEYS[1]) or ''}
