-- win_decide.lua - the probe of a closed window whose trust ran out (SPEC
-- section 4): one instance's send goes upstream, and the entry is trusted
-- again from now, so that a closed window costs at most one upstream call
-- per recipient per recheck period across all instances.
--
-- The gateway reads the entry (win_get.lua) and judges it in C
-- (cache_judge); only when the judgement is "probe" does it call this,
-- with the entry it judged: a compare-and-set, so that of several
-- instances judging the same entry one probes.
--
-- KEYS[1]  the entry: <base>win:<sender>:<phone key>
-- ARGV[1]  the entry as read (win_get.lua's reply), not ""
-- ARGV[2]  recheck, ms (> 0), for the TTL
-- ARGV[3]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: {now in ms, the entry now or "", 1 if this call made the probe}.
-- When the entry is still the one read, it becomes "closed, learned now",
-- keeping its time and source (as cache_decide does), TTL
-- max(now, its time) + recheck - now, and the reply says 1. Otherwise
-- (someone learned, probed or forgot it meanwhile) nothing is written and
-- the entry as it is now comes back with 0, to be judged again.
local seen, recheck = ARGV[1], tonumber(ARGV[2])
if seen == nil or seen == '' or recheck == nil or recheck <= 0 then
  return redis.error_reply('win_decide: bad arguments')
end
local now, bad = now_us(ARGV[3], 'win_decide')
if bad then return bad end
local now_ms = math.floor(now / 1000)

local cur = redis.call('GET', KEYS[1])
if cur ~= seen then return {now_ms, cur or '', 0} end
local w, l, s = string.match(cur, '^[01]:([-0-9]+):(-?%d+):(%d)$')
if w == nil then return redis.error_reply('win_decide: corrupt entry') end
l = tonumber(l)
if l > now_ms then now_ms = l end -- learned_at never goes back
local base = now_ms
if w ~= '-' and tonumber(w) > base then base = tonumber(w) end
local v = string.format('0:%s:%d:%s', w, now_ms, s)
redis.call('SET', KEYS[1], v, 'PX', string.format('%d', base + recheck - now_ms))
return {now_ms, v, 1}
