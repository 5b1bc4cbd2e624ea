-- prelude.lua - the helpers every script of src/redis/ shares. Not a
-- script (no RS_ entry): scripts/embed-lua.sh puts its lines before each
-- script's, so these locals are in scope in every one of them. Defines
-- functions only: nothing here runs a command until a script calls it.

-- Redis's clock (redis_scripts.h): the time in integer microseconds,
-- arg when given (a script's optional trailing now: tests only), else
-- TIME. nil or "" is not given. A now that is not a number is the
-- caller's error: nil and the reply "<script>: bad now", for the script
-- to return as is.
local function now_us(arg, script)
    if arg == nil or arg == '' then
        local t = redis.call('TIME')
        return tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    local now = tonumber(arg)
    if now == nil then
        return nil, redis.error_reply(script .. ': bad now')
    end
    return now
end

-- A number the limiter scripts keep with SET ... PX (us), or nil. A
-- value these scripts did not write (another type, not a number, or a
-- key without the TTL they always set) is no value: a tampered key heals
-- at the next write instead of failing or refusing every send for ever.
local function read_us(key)
    local v = redis.pcall('GET', key)
    if type(v) ~= 'string' or redis.call('PTTL', key) < 0 then
        return nil
    end
    return tonumber(v)
end
