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

-- ---- the learned refusals (ref_*.lua; SPEC sections 4a and 11) ----
-- An entry is a hash of four fields, kind (refusals.h's refusal_kind_name:
-- "sender_offline", "sender_not_found", "balance"), learned_at and
-- checked_at (ms since the epoch, Redis clock) and body (the upstream's
-- answer, <= 1024 bytes). A sender's is <base>ref:s:<id> and holds only a
-- sender kind; the account's balance is <base>ref:balance and holds only
-- "balance". The index <base>ref:s is a zset of the sender ids that have
-- an entry, each scored with the ms its entry expires at, so that the
-- live ones are counted (ZCOUNT) and the dead ones dropped by score.

-- Kinds by their stored name, as enum refusal_kind, and back.
local REF_KIND = {sender_offline = 0, sender_not_found = 1, balance = 2}
local REF_NAME = {[0] = 'sender_offline', [1] = 'sender_not_found',
                  [2] = 'balance'}
local REF_BODY_MAX = 1024

-- A sender id as the gateway writes it (decimal, >= 1), or nil.
local function ref_sender(s)
  if type(s) ~= 'string' or #s > 19 or not string.match(s, '^[1-9]%d*$') then
    return nil
  end
  return s
end

-- A trust period in ms (an integer >= 0; 0: the kind is off), or nil.
local function ref_trust(s)
  local v = tonumber(s)
  if v == nil or v < 0 or v % 1 ~= 0 then return nil end
  return v
end

-- The TTL (ms from now) of an entry checked at `checked` whose kind is
-- trusted for trust ms: it outlives its trust by as long again, and by a
-- minute at least. While trusted it answers; once its trust ran out it is
-- still the entry whose next send probes (one send goes, the others are
-- answered meanwhile) for that long; a sender that stopped sending lets it
-- vanish. ref_decide.lua extends it when a reload made the trust longer.
local function ref_ttl(checked, trust, now_ms)
  local margin = trust
  if margin < 60000 then margin = 60000 end
  return checked + trust + margin - now_ms
end

-- The entry at key as these scripts write it, or nil: anything else
-- (another type, a field missing, extra or malformed, a kind the key
-- cannot hold, no TTL) is no entry, so a tampered key is never trusted
-- and heals at the next lesson. balance: key is the balance's.
local function ref_read(key, balance)
  if redis.call('TYPE', key)['ok'] ~= 'hash' or
     redis.call('PTTL', key) <= 0 or redis.call('HLEN', key) ~= 4 then
    return nil
  end
  local f = redis.call('HMGET', key, 'kind', 'learned_at', 'checked_at', 'body')
  local k = REF_KIND[f[1] or '']
  if k == nil or (k == 2) ~= balance then return nil end
  for i = 2, 3 do
    if type(f[i]) ~= 'string' or #f[i] > 15 or
       not string.match(f[i], '^%d+$') then
      return nil
    end
  end
  if type(f[4]) ~= 'string' or #f[4] > REF_BODY_MAX then return nil end
  return {kind = k, learned = tonumber(f[2]), checked = tonumber(f[3]),
          body = f[4]}
end

-- Keeps the index's own TTL at least as long as its longest-lived member.
local function ref_index_ttl(index, now_ms)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #last == 2 then
    local ttl = tonumber(last[2]) - now_ms
    if ttl > 0 and redis.call('PTTL', index) < ttl then
      redis.call('PEXPIRE', index, string.format('%d', ttl))
    end
  end
end

-- The index, before a script writes it: a value of another type is
-- dropped (it heals), and members whose entry has expired go.
local function ref_index_prepare(index, now_ms)
  local t = redis.call('TYPE', index)['ok']
  if t ~= 'zset' and t ~= 'none' then redis.call('DEL', index) end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', string.format('%d', now_ms))
end

-- Writes an entry (a new hash, whatever was there) with its TTL, and for a
-- sender its place in the index.
local function ref_write(key, index, sender, kind, learned, checked, body,
                         ttl, now_ms)
  redis.call('DEL', key)
  redis.call('HSET', key, 'kind', REF_NAME[kind],
             'learned_at', string.format('%d', learned),
             'checked_at', string.format('%d', checked), 'body', body)
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  if sender then
    ref_index_prepare(index, now_ms)
    redis.call('ZADD', index, string.format('%d', now_ms + ttl), sender)
    ref_index_ttl(index, now_ms)
  end
end

-- The entries held now, as every ref_ script replies them (the gateway's
-- refusal_entries): the index's live members, and the balance. Reads only.
local function ref_count(index, balance, now_ms)
  local n = redis.pcall('ZCOUNT', index, '(' .. string.format('%d', now_ms),
                        '+inf')
  if type(n) ~= 'number' then n = 0 end
  return n + redis.call('EXISTS', balance)
end
