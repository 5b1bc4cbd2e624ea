-- ref_learn.lua - what a send's answer taught of the learned refusals
-- (SPEC sections 4a and 11), shared by every instance; the gateway reads
-- the answer (refusals.h's refusal_extract) and sends the lesson:
--   put    a refusal: the sender's entry (sender_offline,
--          sender_not_found) or the balance becomes that kind with that
--          body, learned_at = checked_at = now
--   clear  a 2xx: the sender's entry and the balance go
-- The newest learned wins: an entry learned later than now is neither
-- replaced nor cleared (a clock that went back, a failover).
--
-- KEYS[1]  the sender's entry: <base>ref:s:<sender> (unused for sender 0)
-- KEYS[2]  the balance: <base>ref:balance
-- KEYS[3]  the index: <base>ref:s
-- ARGV[1]  "put" or "clear"
-- ARGV[2]  sender id, "0" when unknown (put: only the balance; clear:
--          only the balance is cleared)
-- ARGV[3]  put: the kind (refusal_kind_name); clear: ""
-- ARGV[4]  put: the body (<= 1024 bytes); clear: ""
-- ARGV[5]  put: the kind's trust, ms; 0 (the kind is off) learns nothing
-- ARGV[6]  optional now, in microseconds (tests only; default TIME)
--
-- TTL of an entry put: the prelude's ref_ttl (its trust, then as long
-- again, a minute at least); the index's own TTL follows its longest-lived
-- member. A put of a kind that is off, or one older than the entry it
-- would replace, writes nothing.
--
-- Reply: {done, entries}: done 1 when the entry was put, else 0; for a
-- clear, the entries cleared (0..2); entries: the prelude's ref_count.
local op, sender = ARGV[1], ARGV[2]
if (op ~= 'put' and op ~= 'clear') or
   (sender ~= '0' and not ref_sender(sender)) then
  return redis.error_reply('ref_learn: bad arguments')
end
local now, bad = now_us(ARGV[6], 'ref_learn')
if bad then return bad end
local now_ms = math.floor(now / 1000)
local index, balance = KEYS[3], KEYS[2]

if op == 'clear' then
  local n = 0
  local function clear(key, is_balance, who)
    local e = ref_read(key, is_balance)
    if e and e.learned > now_ms then return end -- learned after: it wins
    if e then n = n + 1 end
    -- a malformed entry goes too; no entry: nothing to write
    if redis.call('DEL', key) == 0 then return end
    if who then
      ref_index_prepare(index, now_ms)
      redis.call('ZREM', index, who)
    end
  end
  if sender ~= '0' then clear(KEYS[1], false, sender) end
  clear(balance, true, nil)
  return {n, ref_count(index, balance, now_ms)}
end

local kind, body, trust = REF_KIND[ARGV[3]], ARGV[4], ref_trust(ARGV[5])
if kind == nil or body == nil or #body > REF_BODY_MAX or trust == nil or
   (kind ~= 2 and sender == '0') then
  return redis.error_reply('ref_learn: bad arguments')
end
if trust == 0 then return {0, ref_count(index, balance, now_ms)} end
local key, who = KEYS[1], sender
if kind == 2 then key, who = balance, nil end
local e = ref_read(key, kind == 2)
if e and e.learned > now_ms then
  return {0, ref_count(index, balance, now_ms)}
end
ref_write(key, index, who, kind, now_ms, now_ms, body,
          ref_ttl(now_ms, trust, now_ms), now_ms)
return {1, ref_count(index, balance, now_ms)}
