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
local now = tonumber(ARGV[1] or '')
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local old = tonumber(redis.call('GET', KEYS[2]) or '')
if not old or old <= now then
    return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
