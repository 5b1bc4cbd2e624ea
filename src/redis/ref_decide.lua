-- ref_decide.lua - the learned refusals' decision on a send (SPEC sections
-- 4a and 11), as refusals.h's refusals_decide: the sender's entry, then the
-- account's balance; the first trusted one answers; else the first whose
-- trust ran out (its kind on) is probed: its checked_at becomes now in the
-- same atomic step, so that of all the instances exactly one probes per
-- trust period and the sends after it are answered from the entry until
-- the probe's answer is learned (ref_learn.lua). The route only sets the
-- status answered (refusal_status(), in the gateway): it is not asked here.
--
-- KEYS[1]  the sender's entry: <base>ref:s:<sender> (unused for sender 0)
-- KEYS[2]  the balance: <base>ref:balance
-- KEYS[3]  the index: <base>ref:s
-- ARGV[1]  sender id, "0" when unknown (only the balance is read)
-- ARGV[2]  trust of sender_offline, ms (0: the kind is off, never trusted)
-- ARGV[3]  trust of sender_not_found, ms
-- ARGV[4]  trust of balance, ms
-- ARGV[5]  optional now, in microseconds (tests only; default TIME)
--
-- Entries are read as the prelude's ref_read: a malformed one, or one of
-- a kind its key cannot hold, is no entry.
--
-- Reply: {code, kind, body, entries}: code 0 forward (kind -1, body ""),
-- 1 answer (kind, enum refusal_kind, and the kept body), 2 probe (kind;
-- body ""); entries: what is held now (the prelude's ref_count). A probe's
-- reply has two more: {2, kind, "", entries, mark, was}, its mark (the
-- checked_at it wrote, ms) and the checked_at it replaced, for
-- ref_unprobe.lua.
-- A forward writes nothing. A probe rewrites checked_at and the TTL
-- (the prelude's ref_ttl, from now). An answer writes only when its entry
-- would expire while still trusted (a reload made the trust longer than
-- the one it was written with): its TTL becomes ref_ttl again.
local sender = ARGV[1]
local trust = {[0] = ref_trust(ARGV[2]), ref_trust(ARGV[3]),
               ref_trust(ARGV[4])}
if (sender ~= '0' and not ref_sender(sender)) or trust[0] == nil or
   trust[1] == nil or trust[2] == nil then
  return redis.error_reply('ref_decide: bad arguments')
end
local now, bad = now_us(ARGV[5], 'ref_decide')
if bad then return bad end
local now_ms = math.floor(now / 1000)

local s = nil
if sender ~= '0' then s = ref_read(KEYS[1], false) end
local b = ref_read(KEYS[2], true)

-- nil: no entry or its kind off; else whether it is trusted now
local function judge(e)
  if e == nil or trust[e.kind] == 0 then return nil end
  return now_ms < e.checked + trust[e.kind]
end

-- key's TTL (and its index score) set to ttl
local function place(key, who, ttl)
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  if who then
    ref_index_prepare(KEYS[3], now_ms)
    redis.call('ZADD', KEYS[3], string.format('%d', now_ms + ttl), who)
    ref_index_ttl(KEYS[3], now_ms)
  end
end

local function answer(key, e, who)
  local t = trust[e.kind]
  if redis.call('PTTL', key) < e.checked + t - now_ms then
    place(key, who, ref_ttl(e.checked, t, now_ms))
  end
  return {1, e.kind, e.body, ref_count(KEYS[3], KEYS[2], now_ms)}
end

local function probe(key, e, who)
  redis.call('HSET', key, 'checked_at', string.format('%d', now_ms))
  place(key, who, ref_ttl(now_ms, trust[e.kind], now_ms))
  return {2, e.kind, '', ref_count(KEYS[3], KEYS[2], now_ms), now_ms,
          e.checked}
end

local js, jb = judge(s), judge(b)
if js == true then return answer(KEYS[1], s, sender) end
if jb == true then return answer(KEYS[2], b, nil) end
if js == false then return probe(KEYS[1], s, sender) end
if jb == false then return probe(KEYS[2], b, nil) end
return {0, -1, '', ref_count(KEYS[3], KEYS[2], now_ms)}
