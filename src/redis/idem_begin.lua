-- idem_begin.lua - the verdict on an Idempotency-Key, and its claim when
-- it is new (SPEC sections 5 and 11). Atomic: two instances asking at
-- once get one claim between them.
--
-- KEYS[1]  the key's record: <base>idem:<hex SHA-256 of caller "\n" key>
-- KEYS[2]  the fencing counter: <base>fence
-- ARGV[1]  fingerprint: the hex SHA-256 of the request body
-- ARGV[2]  claim lease, ms (> 0): how long a claim not yet sent holds
-- ARGV[3]  optional now, in microseconds (tests only; default TIME)
--
-- The record is a hash: fp (fingerprint), st ("claimed", "sent" or
-- "done"), tok (the holder's fencing token; not once done), lease (end of
-- the holder's lease, us, Redis clock), ans (done: the kept answer, an
-- opaque blob the gateway encodes, redis_answer.h).
--
-- Order (the fingerprint before in-flight, SPEC section 11):
--   no record, or claimed with its lease over (its instance died before
--   the send left: the key is free again, whatever the body)
--                                     -> claim it: {0, token}
--   another fingerprint               -> {3}  reused (422)
--   done                              -> {1, answer}  replay
--   claimed or sent, lease running    -> {2}  in progress (409)
--   sent, lease over (its instance died after the send may have left)
--                                     -> {4}  unknown outcome: the gateway
--                                        replays a 502 "outcome": "unknown"
-- The codes 0..3 are enum idem_verdict's.
--
-- A claim: token = "<INCR fence>-<now us>", unique even if the counter
-- (kept 30 days after the last claim) ever starts again; the record gets
-- st "claimed" and a TTL of the lease, so that a claim whose instance
-- dies before "sent" frees the key when its lease ends. Only a claim
-- writes.
local fp = ARGV[1]
local lease_ms = tonumber(ARGV[2])
if fp == nil or fp == '' or lease_ms == nil or lease_ms < 1 then
  return redis.error_reply('idem_begin: bad arguments')
end
local now, bad = now_us(ARGV[3], 'idem_begin')
if bad then return bad end

local r = redis.call('HMGET', KEYS[1], 'fp', 'st', 'lease', 'ans')
local st, lease = r[2], tonumber(r[3])
if r[1] then
  if st ~= 'claimed' and st ~= 'sent' and st ~= 'done' then
    return redis.error_reply('idem_begin: corrupt record')
  end
  local over = st ~= 'done' and (lease == nil or now >= lease)
  if not (st == 'claimed' and over) then
    if r[1] ~= fp then return {3} end
    if st == 'done' then
      if not r[4] then return redis.error_reply('idem_begin: corrupt record') end
      return {1, r[4]}
    end
    if not over then return {2} end
    return {4}
  end
end

local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 30 * 86400 * 1000)
local tok = string.format('%d-%d', n, now)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'fp', fp, 'st', 'claimed', 'tok', tok,
           'lease', string.format('%d', now + lease_ms * 1000))
redis.call('PEXPIRE', KEYS[1], lease_ms)
return {0, tok}
