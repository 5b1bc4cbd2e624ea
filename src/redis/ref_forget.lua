-- ref_forget.lua - DELETE /admin/refusals (SPEC sections 4a and 7):
-- forgets one sender's entry, or the balance, for every instance.
--
-- KEYS[1]  the sender's entry: <base>ref:s:<sender> (unused for sender 0)
-- KEYS[2]  the balance: <base>ref:balance
-- KEYS[3]  the index: <base>ref:s
-- ARGV[1]  sender id; "0": the balance
-- ARGV[2]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: {found, entries}: found 1 when there was an entry (ref_read: a
-- malformed one is deleted, but was none), else 0; entries: the prelude's
-- ref_count.
local sender = ARGV[1]
if sender ~= '0' and not ref_sender(sender) then
  return redis.error_reply('ref_forget: bad arguments')
end
local now, bad = now_us(ARGV[2], 'ref_forget')
if bad then return bad end
local now_ms = math.floor(now / 1000)

local key = KEYS[1]
if sender == '0' then key = KEYS[2] end
local found = ref_read(key, sender == '0') and 1 or 0
if redis.call('DEL', key) == 1 and sender ~= '0' then
  ref_index_prepare(KEYS[3], now_ms)
  redis.call('ZREM', KEYS[3], sender)
end
return {found, ref_count(KEYS[3], KEYS[2], now_ms)}
