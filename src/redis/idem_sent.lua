-- idem_sent.lua - records that a claim's request is about to leave (SPEC
-- section 11): from now on, an instance that dies leaves an unknown
-- outcome (idem_begin.lua's {4}), never a free key.
--
-- KEYS[1]  the key's record (idem_begin.lua)
-- ARGV[1]  the holder's token (idem_begin.lua's reply)
-- ARGV[2]  sent lease, ms (> 0): how long the holder may take to finish
-- ARGV[3]  idempotency.ttl_s in ms (> 0): how long an unknown outcome is
--          kept once the lease is over
-- ARGV[4]  optional now, in microseconds (tests only; default TIME)
--
-- Reply: 1 when the claim held (st was "claimed" with this token): st
-- becomes "sent", lease now + sent lease, TTL sent lease + ttl. 0 when it
-- did not (reclaimed by another after the lease, settled, or gone): writes
-- nothing, and the request must not leave.
local tok = ARGV[1]
local lease_ms, ttl_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
if tok == nil or tok == '' or lease_ms == nil or lease_ms < 1 or
   ttl_ms == nil or ttl_ms < 1 then
  return redis.error_reply('idem_sent: bad arguments')
end
local now, bad = now_us(ARGV[4], 'idem_sent')
if bad then return bad end

local r = redis.call('HMGET', KEYS[1], 'st', 'tok')
if r[1] ~= 'claimed' or r[2] ~= tok then return 0 end
redis.call('HSET', KEYS[1], 'st', 'sent',
           'lease', string.format('%d', now + lease_ms * 1000))
redis.call('PEXPIRE', KEYS[1], lease_ms + ttl_ms)
return 1
