-- rl_reserve.lua - reserves the next slot of one limiter of the account
-- (GCRA, SPEC sections 6 and 11): the same arithmetic as src/ratelimit.c,
-- in integer microseconds of Redis's own clock.
--
-- KEYS[1]  <base>rl:<limiter>     tat, the theoretical arrival time (us)
-- KEYS[2]  <base>pause:<limiter>  no slot before this (us; rl_pause.lua)
-- ARGV[1]  T, the interval in us (>= 1; the gateway rounds 1e6/rate up,
--          so that n slots never span less than n/rate seconds)
-- ARGV[2]  burst b (>= 1): tau = (b - 1) * T
-- ARGV[3]  max_queue_us (>= 0): a slot further away is refused
-- ARGV[4]  now in us (optional, tests only; default TIME)
--
-- slot = max(now, tat - tau, paused_until); then tat = max(tat, slot) + T.
-- Reply: {1, wait_us, paused_us}: granted, the slot is wait_us (>= 0)
--        after now; paused_us > 0 when a pause in force (rl_pause.lua)
--        ends that long after now;
--        {0, retry_after_ms}: refused, nothing written; the slot would be
--        within max_queue_us after retry_after_ms (>= 1, rounded up).
-- TTL: tat expires once it is in the past, where an absent key means the
-- same (slot = now).
-- A value these scripts did not write is no value (the prelude's
-- read_us): a tampered key heals at the next write instead of failing or
-- refusing every send for ever.
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxq = tonumber(ARGV[3])
if not T or T < 1 or not burst or not maxq or maxq < 0 then
    return redis.error_reply('rl_reserve: bad arguments')
end
if burst < 1 then
    burst = 1
end
local now, bad = now_us(ARGV[4], 'rl_reserve')
if bad then
    return bad
end

local tat = read_us(KEYS[1])
local paused = read_us(KEYS[2])
local slot = now
if tat and tat - (burst - 1) * T > slot then
    slot = tat - (burst - 1) * T
end
if paused and paused > slot then
    slot = paused
end
if slot - now > maxq then
    return {0, math.max(1, math.ceil((slot - now - maxq) / 1000))}
end
local next_tat = slot + T
if tat and tat > slot then
    next_tat = tat + T
end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX',
           math.ceil((next_tat - now) / 1000) + 1)
local rest = 0
if paused and paused > now then
    rest = paused - now
end
return {1, slot - now, rest}
