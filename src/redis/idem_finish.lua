-- idem_finish.lua - settles a claim (SPEC sections 5 and 11): keeps the
-- answer for the key, or frees the key, only while the holder's token
-- still holds. A holder whose claim was taken over (its lease ran out and
-- another instance claimed the key) writes nothing.
--
-- KEYS[1]  the key's record (idem_begin.lua)
-- ARGV[1]  the holder's token
-- ARGV[2]  "keep" or "free"
-- ARGV[3]  keep: the answer (an opaque blob, redis_answer.h); free: ""
-- ARGV[4]  keep: idempotency.ttl_s in ms (> 0); free: ignored
--
-- Reply: 1 when the token held (keep: st "done", the answer, TTL ttl, the
-- token and lease gone; free: the record deleted), 0 when it did not
-- (nothing written). No clock: nothing here depends on the time.
local tok, how = ARGV[1], ARGV[2]
if tok == nil or tok == '' or (how ~= 'keep' and how ~= 'free') then
  return redis.error_reply('idem_finish: bad arguments')
end
local ttl_ms = tonumber(ARGV[4])
if how == 'keep' and (ARGV[3] == nil or ttl_ms == nil or ttl_ms < 1) then
  return redis.error_reply('idem_finish: bad arguments')
end

local r = redis.call('HMGET', KEYS[1], 'st', 'tok')
if (r[1] ~= 'claimed' and r[1] ~= 'sent') or r[2] ~= tok then return 0 end
if how == 'free' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HDEL', KEYS[1], 'tok', 'lease')
redis.call('HSET', KEYS[1], 'st', 'done', 'ans', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return 1
