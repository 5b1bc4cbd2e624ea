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
-- A value these scripts did not write is no value (the prelude's
-- read_us): a tampered key heals at the next write instead of failing or
-- refusing every send for ever.
local now, bad = now_us(ARGV[1], 'rl_resume')
if bad then
    return bad
end
local old = read_us(KEYS[2])
if not old or old <= now then
    return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
