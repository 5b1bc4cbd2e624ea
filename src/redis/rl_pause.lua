-- rl_pause.lua - an upstream 429 seen by one instance pauses the limiter
-- for every instance (SPEC sections 6 and 11): no slot before now +
-- pause. An earlier, longer pause still holds (the later end wins).
--
-- KEYS[1]  <base>rl:<limiter>     tat (us; rl_reserve.lua)
-- KEYS[2]  <base>pause:<limiter>  the pause's end (us)
-- ARGV[1]  pause_us (>= 0)
-- ARGV[2]  now in us (optional, tests only; default TIME)
--
-- Slots already reserved and not reached (up to tat) are somewhere on the
-- instances; each moves its own behind the pause. So that new
-- reservations come after them, tat moves by the same delay: the pending
-- run is taken to start at max(now, the previous pause's end).
-- Reply: {remaining_us}: the pause in force ends remaining_us after now.
-- TTL: both keys expire once they are in the past.
-- A value these scripts did not write is no value (the prelude's
-- read_us): a tampered key heals at the next write instead of failing or
-- refusing every send for ever.
local pause = tonumber(ARGV[1])
if not pause or pause < 0 then
    return redis.error_reply('rl_pause: bad arguments')
end
local now, bad = now_us(ARGV[2], 'rl_pause')
if bad then
    return bad
end

local untl = now + math.floor(pause)
local old = read_us(KEYS[2])
local base = now
if old and old > base then
    base = old
end
if untl <= base then
    return {base - now}
end
local tat = read_us(KEYS[1])
if tat and tat > base then
    tat = tat + (untl - base)
    redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',
               math.ceil((tat - now) / 1000) + 1)
end
redis.call('SET', KEYS[2], string.format('%d', untl), 'PX',
           math.ceil((untl - now) / 1000) + 1)
return {untl - now}
