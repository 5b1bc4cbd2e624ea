-- rl_resume.lua - ends a pause early (DELETE /admin/pause, a reload),
-- for every instance (SPEC section 7).
--
-- KEYS[1]  <base>rl:<limiter>     tat (us; rl_reserve.lua)
-- KEYS[2]  <base>pause:<limiter>  the pause's end (us)
-- ARGV[1]  now in us (optional, tests only; default TIME)
--
-- With a pause in force, the pause goes and the schedule restarts at now
-- (tat is dropped: the next reservation goes at once), as src/ratelimit.c
-- does: slots handed out behind the pause are void, and the instance that
-- resumes reserves its waiting items again.
-- Reply: 1 if a pause was in force, 0 if not (nothing written then).
-- A value these scripts did not write (another type, not a number, or a
-- key without the TTL they always set) is no value: a tampered key heals
-- at the next write instead of failing or refusing every send for ever.
local function read_us(key)
    local v = redis.pcall('GET', key)
    if type(v) ~= 'string' or redis.call('PTTL', key) < 0 then
        return nil
    end
    return tonumber(v)
end

local now = tonumber(ARGV[1] or '')
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local old = read_us(KEYS[2])
if not old or old <= now then
    return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
