-- win_learn.lua - what the gateway learned of one 24-hour window (SPEC
-- sections 4 and 11), shared by every instance: the newest learned wins.
--
-- KEYS[1]  the entry: <base>win:<sender>:<phone key>
-- ARGV[1]  "1" open, "0" closed
-- ARGV[2]  open: expires_at; closed: expired_at; in ms since the epoch.
--          "" when unknown (closed only); "+N": N ms after now (a
--          template send: open for 24 h from the moment it is learned)
-- ARGV[3]  source, enum cache_source (0..3)
-- ARGV[4]  recheck, ms (session_cache.recheck_after_s; >= 0), for the TTL
-- ARGV[5]  optional now, in microseconds (tests only; default TIME)
--
-- The entry is one string, "<open>:<when or ->:<learned_at>:<source>",
-- learned_at = now in ms; the gateway reads it back (win_get.lua) and
-- judges it in C, with session_cache.c's own cache_judge().
--
-- Reply: 1 written; 0 the stored entry was learned later than now (it
-- wins: nothing written); 2 the entry would be of no use at once (closed
-- and not trusted, or open and long expired): any older entry is deleted,
-- nothing written. The TTL makes entries vanish once of no use: open,
-- expires_at + recheck (it is then closed and no longer trusted); closed,
-- max(learned_at, expired_at) + recheck (the end of its trust).
local open, whenarg, src = ARGV[1], ARGV[2], tonumber(ARGV[3])
local recheck = tonumber(ARGV[4])
if (open ~= '0' and open ~= '1') or whenarg == nil or src == nil or
   src < 0 or src > 3 or src % 1 ~= 0 or recheck == nil or recheck < 0 then
  return redis.error_reply('win_learn: bad arguments')
end
local now, bad = now_us(ARGV[5], 'win_learn')
if bad then return bad end
local now_ms = math.floor(now / 1000)

local when
if whenarg == '' then
  if open == '1' then return redis.error_reply('win_learn: open needs a time') end
elseif string.sub(whenarg, 1, 1) == '+' then
  local d = tonumber(string.sub(whenarg, 2))
  if d == nil then return redis.error_reply('win_learn: bad time') end
  when = now_ms + d
else
  when = tonumber(whenarg)
  if when == nil then return redis.error_reply('win_learn: bad time') end
end

-- a value of another type (not one this script wrote) is no entry: the
-- SET below replaces it, so that such a key heals when learned again
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' then cur = nil end
if cur then
  local l = tonumber(string.match(cur, '^[01]:[-0-9]+:(-?%d+):%d$') or '')
  if l ~= nil and now_ms < l then return 0 end
end

local untrusted
if open == '1' then
  untrusted = when + recheck
else
  untrusted = now_ms
  if when ~= nil and when > untrusted then untrusted = when end
  untrusted = untrusted + recheck
end
local ttl = untrusted - now_ms
if ttl <= 0 or (open == '0' and recheck == 0) then
  redis.call('DEL', KEYS[1])
  return 2
end
local v = string.format('%s:%s:%d:%d', open,
                        when and string.format('%d', when) or '-', now_ms, src)
redis.call('SET', KEYS[1], v, 'PX', string.format('%d', ttl))
return 1
