"""The Redis side of the gateway's limits (gateway/limits.py): two Lua scripts, one round trip each.

They do what `limits`' acquire_moving_window.lua (requests) and acquire_sliding_window.lua (tokens) do, on
the library's own key layout, for every limit of a request at once.
"""

from __future__ import annotations

__all__ = ["ADMIT", "SETTLE"]

# Shared by both scripts: `limits`' sliding-window counter, a previous and a current counter per window.
_WINDOW = """
local function window(prev_key, cur_key, expiry_ms)
  -- rolls the window over when the current counter is in its second half-life, then reads both counters
  local cur_ttl = tonumber(redis.call('pttl', cur_key))
  if cur_ttl > 0 and cur_ttl < expiry_ms then
    redis.call('rename', cur_key, prev_key)
    redis.call('set', cur_key, 0, 'PX', cur_ttl + expiry_ms)
  end
  local prev = tonumber(redis.call('get', prev_key)) or 0
  local prev_ttl = math.max(0, tonumber(redis.call('pttl', prev_key)))
  local cur = tonumber(redis.call('get', cur_key)) or 0
  cur_ttl = math.max(0, tonumber(redis.call('pttl', cur_key)))
  return prev, prev_ttl, cur, cur_ttl
end

local function add(cur_key, amount, expiry_ms)
  -- adds to the current counter; returns its value, and its ttl when this created it
  if redis.call('exists', cur_key) == 1 then
    return redis.call('incrby', cur_key, amount), nil
  end
  redis.call('set', cur_key, amount, 'PX', expiry_ms * 2)
  return amount, expiry_ms * 2
end
"""

# `limits`' acquire_moving_window.lua and acquire_sliding_window.lua, for every limit of a request at once:
# all are tested before any is counted. KEYS, per limit: the requests list, then the previous and current
# token counters. ARGV: now (s), expiry (s), tokens, n, then per limit: rpm, tpm, figures wanted (0/1).
# Returns {1, per limit with figures: count, oldest, prev, prev_ttl_ms, cur, cur_ttl_ms}, or a refusal:
# {0, i, 1, oldest entry} (requests) or {0, i, 2, prev, prev_ttl_ms, cur, cur_ttl_ms} (tokens).
ADMIT = _WINDOW + """
local now, expiry, tokens, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expiry_ms = expiry * 1000
local function arg(i, j) return tonumber(ARGV[4 + (i - 1) * 3 + j]) end

for i = 1, n do
  local entry = redis.call('lindex', KEYS[i * 3 - 2], arg(i, 1) - 1)
  if entry and tonumber(entry) >= now - expiry then return {0, i, 1, entry} end
end

local windows = {}
for i = 1, n do
  if tokens > 0 or arg(i, 3) == 1 then
    local prev, prev_ttl, cur, cur_ttl = window(KEYS[i * 3 - 1], KEYS[i * 3], expiry_ms)
    if tokens > 0 and math.floor(prev * prev_ttl / expiry_ms) + cur + tokens > arg(i, 2) then
      return {0, i, 2, prev, prev_ttl, cur, cur_ttl}
    end
    windows[i] = {prev, prev_ttl, cur, cur_ttl}
  end
end

local out = {1}
for i = 1, n do
  local list = KEYS[i * 3 - 2]
  redis.call('lpush', list, ARGV[1])
  redis.call('ltrim', list, 0, arg(i, 1) - 1)
  redis.call('expire', list, expiry)
  local w = windows[i]
  if tokens > 0 then
    local value, ttl = add(KEYS[i * 3], tokens, expiry_ms)
    w[3], w[4] = value, ttl or w[4]
  end
  if arg(i, 3) == 1 then
    local low, high, last = 1, redis.call('llen', list) - 1, 0
    while low <= high do
      local mid = math.floor((low + high) / 2)
      if tonumber(redis.call('lindex', list, mid)) >= now - expiry then
        last, low = mid, mid + 1
      else
        high = mid - 1
      end
    end
    for _, v in ipairs({last + 1, redis.call('lindex', list, last), w[1], w[2], w[3], w[4]}) do
      out[#out + 1] = v
    end
  end
end
return out
"""

# Settles a reservation: adds `amount` (negative: gives back) to each limit's current token counter; a
# positive amount only when it fits. KEYS, per limit: previous and current counters. ARGV: expiry, amount, tpms.
SETTLE = _WINDOW + """
local expiry_ms, amount = tonumber(ARGV[1]) * 1000, tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local cur_key = KEYS[i * 2]
  local prev, prev_ttl, cur = window(KEYS[i * 2 - 1], cur_key, expiry_ms)
  if amount <= 0 or math.floor(prev * prev_ttl / expiry_ms) + cur + amount <= tonumber(ARGV[2 + i]) then
    add(cur_key, amount, expiry_ms)
  end
end
return 1
"""
