-- rl_depart.lua - the on-the-wire guard shared by every instance (SPEC
-- sections 6 and 11; src/ratelimit.h's rl_guard, in Redis time).
--
-- Slots say when a request may go; the promise "at most n = rate + burst
-- - 1 in any window" is about when requests reach the upstream. Each
-- request handed over is an entry of a sorted set whose score bounds its
-- arrival upstream from above:
--   handed, not left yet:  granted + pending_us (it cannot wait longer
--                          than the upstream timeout before it leaves)
--   left (first byte out): min(that, the report's TIME + cap_us)
--   answered:              min(that, the report's TIME): an answer comes
--                          after its request arrived
-- A request may be handed over at t while fewer than n entries have a
-- bound > t - window: its arrival is >= t, so no window-long interval of
-- arrivals ever holds more than n, whichever instance sent them.
--
-- KEYS[1]  <base>dep:<limiter>    the entries (member: a ticket, unique
--                                 per request and instance)
-- KEYS[2]  <base>pause:<limiter>  a pause holds every departure (us)
-- ARGV[1]  the operation:
--   "ask"  ticket n window_us pending_us [now]
--          {1, wait_us, 0}: go wait_us (>= 0) after now: the room opens
--          then for sure (the n-th largest bound is an answer or a
--          departure, so it cannot rise); the entry is added as handed
--          from then on (its bound: then + pending_us).
--          {0, wait_us, why}: not now, nothing added; why = 2: paused,
--          wait_us is the rest of the pause; why = 1: held by one still
--          on its way (its bound may fall sooner: ask again before
--          wait_us).
--   "paused" [now]  {remaining_us}: the pause in force (0: none).
--   "left" ticket cap_us [now]   its first byte left
--   "done" ticket [now]          its answer came
--   "drop" ticket                it ended without leaving
--          reply 1 if the ticket's entry was there, else 0.
-- Bounds only ever fall. A refused ask writes nothing; a granted one
-- removes the entries a window old. The key expires a window after its
-- largest bound.
-- A key these scripts did not write is no value, so that a tampered key
-- heals instead of failing every ask (each gateway would fall back to its
-- own share for ever) or holding every ask for ever: the pause key is
-- read with the prelude's read_us (no pause); a dep key of another type,
-- or a sorted set without the TTL ask always sets (nothing else creates
-- the key), is an empty guard: the reports find no entry (0, nothing
-- written) and the next granted ask replaces it.
local function guard_is_ours(key)
    return redis.call('TYPE', key)['ok'] == 'zset' and
               redis.call('PTTL', key) >= 0
end

local op = ARGV[1]

if op == 'ask' then
    local n = tonumber(ARGV[3])
    local window = tonumber(ARGV[4])
    local pending = tonumber(ARGV[5])
    if not n or n < 1 or not window or window < 0 or not pending then
        return redis.error_reply('rl_depart: bad arguments')
    end
    local now, bad = now_us(ARGV[6], 'rl_depart')
    if bad then
        return bad
    end
    local paused = read_us(KEYS[2])
    if paused and paused > now then
        return {0, paused - now, 2}
    end
    local ours = guard_is_ours(KEYS[1])
    local go = now
    local old = string.format('%d', now - window)
    if ours and redis.call('ZCOUNT', KEYS[1], '(' .. old, '+inf') >= n then
        -- the n-th largest bound is one of those counted
        local nth = redis.call('ZREVRANGE', KEYS[1], n - 1, n - 1, 'WITHSCORES')
        local b = tonumber(nth[2])
        if b > now then
            return {0, b + window - now, 1}
        end
        -- known for good (bounds only fall): the room opens at b + window,
        -- and whatever is added meanwhile counts against what comes after
        go = b + window
    end
    if ours then
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', old)
    else
        redis.call('DEL', KEYS[1]) -- not a guard: the ZADD makes one
    end
    redis.call('ZADD', KEYS[1], string.format('%d', go + pending), ARGV[2])
    local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[1],
               math.ceil((tonumber(top[2]) - now + window) / 1000) + 1)
    return {1, go - now, 0}
elseif op == 'left' or op == 'done' then
    local cap, at = 0, ARGV[3]
    if op == 'left' then
        cap = tonumber(ARGV[3])
        if not cap or cap < 0 then
            return redis.error_reply('rl_depart: bad arguments')
        end
        at = ARGV[4]
    end
    local now, bad = now_us(at, 'rl_depart')
    if bad then
        return bad
    end
    local bound = now + cap
    if not guard_is_ours(KEYS[1]) or
       not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
        return 0
    end
    redis.call('ZADD', KEYS[1], 'XX', 'LT', string.format('%d', bound), ARGV[2])
    return 1
elseif op == 'paused' then
    local now, bad = now_us(ARGV[2], 'rl_depart')
    if bad then
        return bad
    end
    local paused = read_us(KEYS[2])
    if paused and paused > now then
        return {paused - now}
    end
    return {0}
elseif op == 'drop' then
    if not guard_is_ours(KEYS[1]) then
        return 0
    end
    return redis.call('ZREM', KEYS[1], ARGV[2])
end
return redis.error_reply('rl_depart: unknown operation')
