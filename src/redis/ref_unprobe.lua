-- ref_unprobe.lua - a probe that was not spent (refusals.h's
-- refusals_unprobe; SPEC sections 4a and 11): its send never reached the
-- upstream, or the answer said nothing of the refusal. The entry gets back
-- the checked_at the probe replaced (ref_decide.lua's reply gave both), so
-- that the next matching send, on any instance, is the probe: the trust a
-- probe renews is paid for by an answer. Only while the entry is still the
-- one the probe marked (its kind, its checked_at the probe's); its TTL,
-- set by the probe from then, outlives the trust given back.
--
-- KEYS[1]  the entry: <base>ref:s:<sender>, or <base>ref:balance
-- ARGV[1]  the kind probed (enum refusal_kind)
-- ARGV[2]  the probe's mark, ms (its checked_at)
-- ARGV[3]  the checked_at it replaced, ms
--
-- Reply: 1 put back, 0 not (learned again, cleared or replaced since).
-- Reads no clock.
local kind = tonumber(ARGV[1])
local mark = ARGV[2]
local was = ARGV[3]
if kind == nil or REF_NAME[kind] == nil or
   not string.match(mark or '', '^%d+$') or #mark > 15 or
   not string.match(was or '', '^%d+$') or #was > 15 or
   tonumber(was) > tonumber(mark) then
  return redis.error_reply('ref_unprobe: bad arguments')
end
local e = ref_read(KEYS[1], kind == 2)
if e == nil or e.kind ~= kind or e.checked ~= tonumber(mark) then
  return 0
end
redis.call('HSET', KEYS[1], 'checked_at', was)
return 1
