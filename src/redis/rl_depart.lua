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
-- Presence (src/shaper.h, "shared mode"): an instance cut off from Redis
-- sends on its own at its share (max(1, floor(n / instances)) per
-- window), which this log does not see. So each instance that shares
-- says it is alive, and an ask leaves that share free for every instance
-- of state.instances not alive here: room = n - missing x share. An
-- instance's alive entry is scored T + L, T being a Redis time the
-- instance received (a stamp), never the time the heartbeat happens to
-- run: a heartbeat stuck in a frozen Redis and run at the thaw is stale
-- (now - T > L) and refused, so an instance knows its entry is gone
-- by (receipt of its last stamp) + L, and sends alone only a window
-- (+ cap) after that.
--
-- KEYS[1]  <base>dep:<limiter>    the entries (member: a ticket, unique
--                                 per request and instance)
-- KEYS[2]  <base>pause:<limiter>  a pause holds every departure (us)
-- KEYS[3]  <base>alive:<limiter>  the instances alive (member: the
--                                 instance's id; score: stamp + L, us)
-- KEYS[4]  <base>log:<limiter>    when this log began (us): a log begun
--                                 after an instance's last stamp was lost
--                                 (Redis restarted empty, flushed, failed
--                                 over) with the departures it held
--                                 "since until": until (us), written
--                                 with the guard's TTL (which ends
--                                 later), is when its entries stop
--                                 mattering (largest bound + window): a
--                                 guard gone before then was lost
--                                 (evicted, deleted) with departures it
--                                 held, and no grant comes before until
-- KEYS[5]  <base>hold:<limiter>   no grant before this (us): a lost log
--                                 held every instance's departures of the
--                                 window before it began
-- KEYS[3..5] are optional (without them: no presence, no hold).
-- ARGV[1]  the operation:
--   "alive" id T L_us hold_us [now]
--          T: the instance's last stamp, or "" for none (its first
--          contact, or a rejoin's first step). Accepted when now - T <=
--          L_us: the id's score becomes max(it, T + L_us). A log not
--          there begins now; begun so under an instance that had a stamp,
--          it was lost: no grant before now + hold_us (window + cap).
--          Reply {now, accepted (1/0)}: now is the next stamp.
--   "back" id T prev L_us hold_us now [member offset_us]...
--          An instance sharing again after it was cut off (or its link
--          dropped), in one step: T its stamp (as "alive"; stale: {0,
--          now}, nothing written), prev its last stamp before the drop
--          ("" for none). A log begun after prev (or not there) was lost:
--          no grant before its start + hold_us. Each member is a
--          departure (or a hand-over not left yet) the instance made
--          without this log, its bound now + offset_us (ZADD LT: a
--          bound only falls). Then the id is alive (T + L_us).
--          Reply {1, now, hold_remaining_us}.
--   "ask"  ticket n window_us pending_us [now] [instances id]
--          {1, wait_us, 0}: go wait_us (>= 0) after now: the room opens
--          then for sure (the n-th largest bound is an answer or a
--          departure, so it cannot rise); the entry is added as handed
--          from then on (its bound: then + pending_us).
--          {0, wait_us, why}: not now, nothing added; why = 2: paused,
--          wait_us is the rest of the pause; why = 1: held by one still
--          on its way (its bound may fall sooner: ask again before
--          wait_us), or no room at all (every other instance missing);
--          why = 3: a lost log's hold, wait_us its rest.
--          With instances (state.instances) and id (the asker's, alive
--          or not: it is not sending alone), room = n - missing x share,
--          missing = instances - 1 - (the others alive at go), share =
--          max(1, floor(n / instances)); alive at go, not only now: a
--          grant for later counts as made then.
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

local function us(v)
    return string.format('%d', v)
end

-- The others alive at t (ids other than id scored above t); an alive key
-- these scripts did not write is nobody alive.
local function others_alive(t, id)
    if not KEYS[3] or not guard_is_ours(KEYS[3]) then
        return 0
    end
    local c = redis.call('ZCOUNT', KEYS[3], '(' .. us(t), '+inf')
    local mine = redis.call('ZSCORE', KEYS[3], id)
    if mine and tonumber(mine) > t then
        c = c - 1
    end
    return c
end

-- id alive until untl (never earlier than it was); the expired go.
local function mark_alive(id, untl, now)
    if not guard_is_ours(KEYS[3]) then
        redis.call('DEL', KEYS[3])
    end
    redis.call('ZADD', KEYS[3], 'GT', us(untl), id)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', us(now))
    local top = redis.call('ZREVRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    if top[2] then
        redis.call('PEXPIRE', KEYS[3],
                   math.ceil((tonumber(top[2]) - now) / 1000) + 1)
    end
end

-- The log key: its start and the guard's until (nil when not there, or
-- not written by these scripts).
local function log_read()
    if not KEYS[4] then
        return nil
    end
    local v = redis.pcall('GET', KEYS[4])
    if type(v) ~= 'string' or redis.call('PTTL', KEYS[4]) < 0 then
        return nil
    end
    local s, u = string.match(v, '^(%-?%d+) ?(%-?%d*)$')
    return tonumber(s), tonumber(u)
end

-- The log's start (begun now if not there), and whether it began after
-- prev (nil: no stamp: nothing to compare). A log is kept an hour after
-- the last instance said it was alive.
local LOG_TTL_MS = 3600000
local function log_since(now)
    local since = log_read()
    local fresh = since == nil
    if fresh then
        since = now
        redis.call('SET', KEYS[4], us(since), 'PX', LOG_TTL_MS)
    else
        redis.call('PEXPIRE', KEYS[4], LOG_TTL_MS)
    end
    return since, fresh
end

-- The log's until (nil: none) with its start kept.
local function log_until(untl)
    local since = log_read()
    if since then
        local v = us(since)
        if untl then
            v = v .. ' ' .. us(untl)
        end
        redis.call('SET', KEYS[4], v, 'KEEPTTL')
    end
end

-- The guard's TTL set from its largest bound top: the log (if there)
-- learns until = top + window; the key lives a millisecond past it.
local function guard_expire(top, now, window)
    redis.call('PEXPIRE', KEYS[1], math.ceil((top - now + window) / 1000) + 1)
    log_until(top + window)
end

-- The guard emptied by these scripts (not lost): nothing it held matters.
local function guard_emptied()
    if redis.call('EXISTS', KEYS[1]) == 0 then
        log_until(nil)
    end
end

local function hold_until(untl, now)
    local old = read_us(KEYS[5])
    if untl > now and (not old or untl > old) then
        redis.call('SET', KEYS[5], us(untl), 'PX',
                   math.ceil((untl - now) / 1000) + 1)
    end
end

local function hold_rest(now)
    local h = KEYS[5] and read_us(KEYS[5])
    if h and h > now then
        return h - now
    end
    return 0
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
    local held = hold_rest(now)
    if held > 0 then
        return {0, held, 3}
    end
    local ours = guard_is_ours(KEYS[1])
    if not ours then
        local _, lost = log_read()
        if lost and lost > now then
            -- the departures it held are gone: none before they are old
            if KEYS[5] then
                hold_until(lost, now)
            end
            return {0, lost - now, 3}
        end
    end
    local instances = tonumber(ARGV[7]) or 1
    local id = ARGV[8] or ''
    if instances < 1 then
        instances = 1
    end
    local share = math.max(1, math.floor(n / instances))
    local old = us(now - window)
    local at, others = now, nil
    local go
    -- room from those alive at go: fewer alive later means less room,
    -- a later go, perhaps fewer alive again (at most instances rounds)
    for _ = 0, instances do
        local alive = others_alive(at, id)
        if alive == others then
            break
        end
        others = alive
        local missing = math.max(0, instances - 1 - others)
        local room = n - missing * share
        if room < 1 then
            return {0, window, 1}
        end
        go = now
        if ours and redis.call('ZCOUNT', KEYS[1], '(' .. old, '+inf') >= room then
            -- the room-th largest bound is one of those counted
            local nth = redis.call('ZREVRANGE', KEYS[1], room - 1, room - 1,
                                   'WITHSCORES')
            local b = tonumber(nth[2])
            if b > now then
                return {0, b + window - now, 1}
            end
            -- known for good (bounds only fall): the room opens at b +
            -- window, and whatever is added meanwhile counts against what
            -- comes after
            go = b + window
        end
        if instances == 1 then
            break
        end
        at = go
    end
    if ours then
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', old)
    else
        redis.call('DEL', KEYS[1]) -- not a guard: the ZADD makes one
    end
    redis.call('ZADD', KEYS[1], string.format('%d', go + pending), ARGV[2])
    local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    guard_expire(tonumber(top[2]), now, window)
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
elseif op == 'alive' then
    local id, T = ARGV[2], tonumber(ARGV[3])
    local L, hold = tonumber(ARGV[4]), tonumber(ARGV[5])
    if not id or id == '' or (ARGV[3] ~= '' and not T) or not L or L < 0 or
       not hold or hold < 0 or not KEYS[5] then
        return redis.error_reply('rl_depart: bad arguments')
    end
    local now, bad = now_us(ARGV[6], 'rl_depart')
    if bad then
        return bad
    end
    local _, fresh = log_since(now)
    if fresh and T then
        hold_until(now + hold, now) -- it had a stamp of a log now gone
    end
    local ok = 0
    if T and now - T <= L and T + L > now then
        mark_alive(id, T + L, now)
        ok = 1
    end
    return {now, ok}
elseif op == 'back' then
    local id, T = ARGV[2], tonumber(ARGV[3])
    local prev = tonumber(ARGV[4])
    local L, hold = tonumber(ARGV[5]), tonumber(ARGV[6])
    if not id or id == '' or not T or (ARGV[4] ~= '' and not prev) or
       not L or L < 0 or not hold or hold < 0 or not KEYS[5] or
       (#ARGV - 7) % 2 ~= 0 then
        return redis.error_reply('rl_depart: bad arguments')
    end
    local now, bad = now_us(ARGV[7], 'rl_depart')
    if bad then
        return bad
    end
    for i = 8, #ARGV, 2 do
        if ARGV[i] == '' or not tonumber(ARGV[i + 1]) then
            return redis.error_reply('rl_depart: bad arguments')
        end
    end
    if now - T > L or T + L <= now then
        return {0, now}
    end
    local since, fresh = log_since(now)
    if prev and (fresh or since > prev) then
        hold_until(since + hold, now)
    end
    if #ARGV >= 8 then
        if not guard_is_ours(KEYS[1]) then
            local _, lost = log_read()
            if lost then
                hold_until(lost, now) -- a lost guard (see "ask")
            end
            redis.call('DEL', KEYS[1])
        end
        for i = 8, #ARGV, 2 do
            redis.call('ZADD', KEYS[1], 'LT',
                       us(now + tonumber(ARGV[i + 1])), ARGV[i])
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', us(now - hold))
        local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        if top[2] then
            guard_expire(tonumber(top[2]), now, hold)
        else
            guard_emptied()
        end
    end
    mark_alive(id, T + L, now)
    return {1, now, hold_rest(now)}
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
    local gone = redis.call('ZREM', KEYS[1], ARGV[2])
    guard_emptied()
    return gone
end
return redis.error_reply('rl_depart: unknown operation')
