-- ref_senders.lua - what a senders list (GET /senders, 200) taught of the
-- learned refusals (SPEC sections 4a and 11), as refusals.h's
-- refusals_learn_senders: the gateway reads the list
-- (refusal_senders_extract) and sends one lesson per listed sender, in
-- the list's order:
--   "c<id>"  listed online: its entry goes (either kind)
--   "o<id>"  listed not online in a ?status=all list (sender_offline on):
--            offline, learned_at = checked_at = now, with ARGV[2] as its
--            body, unless its entry already is offline: that body (a
--            send's own words) is kept
--   "n<id>"  listed (so it exists), nothing more to say: a not-found
--            entry goes
-- The newest learned wins: an entry learned later than now is left as is.
--
-- KEYS[1]       the balance: <base>ref:balance (only counted)
-- KEYS[2]       the index: <base>ref:s
-- KEYS[3..n+2]  the listed senders' entries: <base>ref:s:<id>, the i-th
--               for the i-th lesson
-- ARGV[1]       trust of sender_offline, ms (0: "o" teaches as "n")
-- ARGV[2]       the body a list teaches offline with (REFUSAL_OFFLINE_BODY)
-- ARGV[3..n+2]  the lessons
-- ARGV[n+3]     optional now, in microseconds (tests only; default TIME)
--
-- TTL of an entry written: the prelude's ref_ttl, as ref_learn.lua's.
-- Reply: {changed, entries}: the entries written or cleared; entries: the
-- prelude's ref_count.
local n = #KEYS - 2
local trust, body = ref_trust(ARGV[1]), ARGV[2]
if n < 0 or trust == nil or body == nil or #body > REF_BODY_MAX or
   #ARGV < n + 2 or #ARGV > n + 3 then
  return redis.error_reply('ref_senders: bad arguments')
end
local lessons = {}
for i = 1, n do
  local a = ARGV[2 + i]
  local what, who = string.sub(a, 1, 1), ref_sender(string.sub(a, 2))
  if (what ~= 'c' and what ~= 'o' and what ~= 'n') or who == nil then
    return redis.error_reply('ref_senders: bad arguments')
  end
  if what == 'o' and trust == 0 then what = 'n' end
  lessons[i] = {what, who}
end
local now, bad = now_us(ARGV[n + 3], 'ref_senders')
if bad then return bad end
local now_ms = math.floor(now / 1000)
local balance, index = KEYS[1], KEYS[2]

local changed = 0
for i = 1, n do
  local what, who, key = lessons[i][1], lessons[i][2], KEYS[2 + i]
  local e = ref_read(key, false)
  if e and e.learned > now_ms then
    -- learned after this list: it wins
  elseif what == 'o' then
    local kept = body
    if e and e.kind == 0 then kept = e.body end
    ref_write(key, index, who, 0, now_ms, now_ms, kept,
              ref_ttl(now_ms, trust, now_ms), now_ms)
    changed = changed + 1
  elseif e == nil then
    -- no entry; a malformed one goes (it heals), as a clear would
    if redis.call('EXISTS', key) == 1 then
      redis.call('DEL', key)
      ref_index_prepare(index, now_ms)
      redis.call('ZREM', index, who)
    end
  elseif what == 'c' or e.kind == 1 then
    -- online: either kind goes; listed: a not-found goes
    redis.call('DEL', key)
    ref_index_prepare(index, now_ms)
    redis.call('ZREM', index, who)
    changed = changed + 1
  end
end
return {changed, ref_count(index, balance, now_ms)}
