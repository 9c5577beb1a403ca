"""The Lua scripts the Redis feature-state store runs (see features.redis_store for the keys).

Each runs atomically in Redis: a transaction's read, its optimistic write (with the claim of
its trans_num), a claim alone, a fetch of ids at a version, and the keys' brief locks.
"""

# Appends to `out` one state as a transaction reads it: v, g and each column's skip; each
# column from the length kept in process if g is the one kept, else whole; the id count;
# the last id. `key`: the state's hash in KEYS (its ids and columns follow); `at`: the
# column lengths kept in ARGV.
_READ_STATE = """
local function read_state(out, key, columns, g, at)
    local fields = {'v', 'g'}
    for c = 1, columns do fields[c + 2] = 's' .. c end
    local header = redis.call('HMGET', KEYS[key], unpack(fields))
    for f = 1, columns + 2 do out[#out + 1] = header[f] end
    local kept = header[2] == g
    for c = 1, columns do
        local column = KEYS[key + 1 + c]
        if kept then
            out[#out + 1] = redis.call('GETRANGE', column, ARGV[at + c - 1], -1)
        else
            out[#out + 1] = redis.call('GET', column) or ''
        end
    end
    out[#out + 1] = redis.call('ZCARD', KEYS[key + 1])
    out[#out + 1] = redis.call('ZRANGE', KEYS[key + 1], -1, -1)[1] or false
end
"""
READ = (
    _READ_STATE
    + """
-- KEYS: per state its hash, its ids and its columns.
-- ARGV: per state its column count, the g kept in process ('' if none), the lengths kept.
local out = {}
local key, arg = 1, 1
while key <= #KEYS do
    local columns = tonumber(ARGV[arg])
    read_state(out, key, columns, ARGV[arg + 1], arg + 2)
    key = key + 2 + columns
    arg = arg + 2 + columns
end
return out
"""
)
WRITE = (
    _READ_STATE
    + """
-- KEYS: the initialised mark, the locks, with a claim its key and the unconfirmed claims'
-- sorted set, then per state its hash, its ids and its columns.
-- ARGV: lock token, lock count, claim count (0 or 1), with a claim its fingerprint, time to
-- live (ms), unconfirmed member and time (ms), then per state: the version seen ('' if
-- absent), column count, the g and column lengths kept (to answer a conflict), new
-- version ('' if the state is unchanged, and nothing follows), new g, ids dropped from the
-- front (-1: replace them all), per column its new skip (-1: write it whole) and the
-- bytes to append (or its whole value), ids added (count, then pairs of score and member).
-- 1: written; 0: another holds a lock; -1: not initialised; a string: the trans_num was
-- claimed already with this fingerprint, nothing was written; else a version changed and
-- nothing was written: the states as READ returns them.
local function write_state(key, arg, columns)
    local ids = KEYS[key + 1]
    local dropped = tonumber(ARGV[arg + 5 + columns])
    if dropped < 0 then
        redis.call('DEL', ids)
    elseif dropped > 0 then
        redis.call('ZREMRANGEBYRANK', ids, 0, dropped - 1)
    end
    local fields = {'v', ARGV[arg + 3 + columns]}
    for c = 1, columns do
        local column = KEYS[key + 1 + c]
        local skip, bytes = ARGV[arg + 4 + columns + 2 * c], ARGV[arg + 5 + columns + 2 * c]
        if skip == '-1' then
            redis.call('SET', column, bytes)
            skip = 0
            fields[#fields + 1] = 'g'
            fields[#fields + 1] = ARGV[arg + 4 + columns]
        elseif bytes ~= '' then
            redis.call('APPEND', column, bytes)
        end
        fields[#fields + 1] = 's' .. c
        fields[#fields + 1] = skip
    end
    redis.call('HSET', KEYS[key], unpack(fields))
    local first = arg + 7 + 3 * columns
    local last = first + 2 * tonumber(ARGV[first - 1]) - 1
    for j = first, last, 2000 do
        redis.call('ZADD', ids, unpack(ARGV, j, math.min(j + 1999, last)))
    end
end

local locks = tonumber(ARGV[2])
local claims = tonumber(ARGV[3])
local gate = redis.call('MGET', unpack(KEYS, 1, locks + 1))
if not gate[1] then return -1 end
for i = 2, locks + 1 do
    if gate[i] and gate[i] ~= ARGV[1] then return 0 end
end
if claims == 1 then
    local prior = redis.call('GET', KEYS[locks + 2])
    if prior then return prior end
end
local states, current = {}, true
local key, arg = locks + 2 + 2 * claims, 4 + 4 * claims
while key <= #KEYS do
    local columns = tonumber(ARGV[arg + 1])
    if (redis.call('HGET', KEYS[key], 'v') or '') ~= ARGV[arg] then current = false end
    states[#states + 1] = {key, arg, columns}
    key = key + 2 + columns
    if ARGV[arg + 3 + columns] == '' then
        arg = arg + 4 + columns
    else
        arg = arg + 7 + 3 * columns + 2 * tonumber(ARGV[arg + 6 + 3 * columns])
    end
end
if not current then
    local out = {}
    for _, state in ipairs(states) do
        read_state(out, state[1], state[3], ARGV[state[2] + 2], state[2] + 3)
    end
    return out
end
for _, state in ipairs(states) do
    local key, arg, columns = state[1], state[2], state[3]
    if ARGV[arg + 3 + columns] ~= '' then write_state(key, arg, columns) end
end
if claims == 1 then
    redis.call('SET', KEYS[locks + 2], ARGV[4], 'PX', ARGV[5])
    redis.call('ZADD', KEYS[locks + 3], ARGV[7], ARGV[6])
end
return 1
"""
)
# A claim with no state to change (a profile without card and merchant ids).
CLAIM_ONLY = """
-- KEYS: the initialised mark, the claim, the unconfirmed claims.
-- ARGV: fingerprint, time to live (ms), unconfirmed member and time (ms).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local prior = redis.call('GET', KEYS[2])
if prior then return prior end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""
FETCH_IDS = """
-- KEYS: a state's hash and ids; ARGV: the version read, first and last rank.
if (redis.call('HGET', KEYS[1], 'v') or '') ~= ARGV[1] then return false end
return redis.call('ZRANGE', KEYS[2], ARGV[2], ARGV[3])
"""
# Lock every key or none: taking them one by one could deadlock two transactions.
LOCK_ALL = """
for _, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""
UNLOCK_OWN = """
for _, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""
EXTEND_OWN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
