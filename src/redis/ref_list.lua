-- ref_list.lua - GET /admin/refusals (SPEC sections 4a and 7): every
-- entry of the learned refusals, the balance first, then the senders in
-- ascending id (refusals.h's refusals_list order). The gateway judges
-- their trust itself, with the periods it is configured with now.
--
-- KEYS[1]  the balance: <base>ref:balance
-- KEYS[2]  the index: <base>ref:s; a sender's entry is this key, ":" and
--          its id (<base>ref:s:<id>: the same hash tag as KEYS)
-- ARGV[1]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: {now in ms, {kind, sender, learned_at, checked_at}...}: kind the
-- enum refusal_kind, sender its id as a string ("0" for the balance: an
-- id above 2^53 would not survive a Lua number), the times in ms.
-- An index member whose entry is gone or malformed (ref_read) is removed
-- from the index: the only write.
local now, bad = now_us(ARGV[1], 'ref_list')
if bad then return bad end
local now_ms = math.floor(now / 1000)

local out = {now_ms}
local b = ref_read(KEYS[1], true)
if b then out[#out + 1] = {b.kind, '0', b.learned, b.checked} end

local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'zset' then
  if t ~= 'none' then redis.call('DEL', KEYS[2]) end -- not ours: heals
  return out
end
local live = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = ref_sender(m) and ref_read(KEYS[2] .. ':' .. m, false)
  if e then
    e.sender = m
    live[#live + 1] = e
  else
    redis.call('ZREM', KEYS[2], m)
  end
end
-- ascending id: canonical decimals compare by length, then by their digits
-- (exact for any id, where numbers would round above 2^53)
table.sort(live, function(x, y)
  if #x.sender ~= #y.sender then return #x.sender < #y.sender end
  return x.sender < y.sender
end)
for _, e in ipairs(live) do
  out[#out + 1] = {e.kind, e.sender, e.learned, e.checked}
end
return out
