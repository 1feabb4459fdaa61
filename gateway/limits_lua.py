"""The Redis side of the gateway's limits (gateway/limits_redis.py): two Lua scripts, one round trip each.

They do what `limits`' acquire_moving_window.lua (requests) and acquire_sliding_window.lua (tokens) do, on
the library's own key layout, for every limit of a request at once. Settlements (a reservation replaced by
the real usage) ride along with the next admission; SETTLE alone only sends those no admission took.
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

local function settle(prev_key, cur_key, expiry_ms, tpm, amount)
  -- a settlement: gives back (amount < 0) always; charges an overshoot only when it fits
  local prev, prev_ttl, cur = window(prev_key, cur_key, expiry_ms)
  if amount < 0 or (amount > 0 and math.floor(prev * prev_ttl / expiry_ms) + cur + amount <= tpm) then
    add(cur_key, amount, expiry_ms)
  end
end
"""

# `limits`' acquire_moving_window.lua and acquire_sliding_window.lua, for every limit of a request at once:
# all are tested before any is counted; first, the settlements waiting in this process are applied.
# KEYS, per limit: the requests list, then the previous and current token counters; then per settlement:
# the previous and current token counters. ARGV: now (s), expiry (s), tokens, n limits, m settlements,
# per limit: rpm, tpm, figures wanted (0/1); per settlement: tpm, amount.
# Returns {1, per limit with figures: count, oldest, prev, prev_ttl_ms, cur, cur_ttl_ms}, or a refusal:
# {0, i, 1, oldest entry} (requests) or {0, i, 2, prev, prev_ttl_ms, cur, cur_ttl_ms} (tokens).
ADMIT = _WINDOW + """
local now, expiry, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n, m = tonumber(ARGV[4]), tonumber(ARGV[5])
local expiry_ms = expiry * 1000
local function arg(i, j) return tonumber(ARGV[5 + (i - 1) * 3 + j]) end

for j = 1, m do
  local a = 5 + n * 3 + (j - 1) * 2
  settle(KEYS[n * 3 + j * 2 - 1], KEYS[n * 3 + j * 2], expiry_ms, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]))
end

for i = 1, n do
  local entry = redis.call('lindex', KEYS[i * 3 - 2], arg(i, 1) - 1)
  if entry and tonumber(entry) >= now - expiry then return {0, i, 1, entry} end
end

-- How many entries of a requests list (newest first) are in the window, and the oldest of them. Entries
-- that left the window are dropped from the tail (`limits` counts only entries in the window, so nothing
-- it reads changes): a few pops when requests keep coming, one binary search and LTRIM after a pause.
local function in_window(list, since)
  for _ = 1, 4 do
    local tail = redis.call('lindex', list, -1)
    if tonumber(tail) >= since then return redis.call('llen', list), tail end
    redis.call('rpop', list)
  end
  local low, high, last = 1, redis.call('llen', list) - 1, 0
  while low <= high do
    local mid = math.floor((low + high) / 2)
    if tonumber(redis.call('lindex', list, mid)) >= since then
      last, low = mid, mid + 1
    else
      high = mid - 1
    end
  end
  redis.call('ltrim', list, 0, last)
  return last + 1, redis.call('lindex', list, last)
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
    local count, oldest = in_window(list, now - expiry)
    for _, v in ipairs({count, oldest, w[1], w[2], w[3], w[4]}) do
      out[#out + 1] = v
    end
  end
end
return out
"""

# The settlements no admission took: per settlement, KEYS: previous and current token counters;
# ARGV: expiry (s), then per settlement: tpm, amount (< 0 gives back).
SETTLE = _WINDOW + """
local expiry_ms = tonumber(ARGV[1]) * 1000
for j = 1, #KEYS / 2 do
  settle(KEYS[j * 2 - 1], KEYS[j * 2], expiry_ms, tonumber(ARGV[j * 2]), tonumber(ARGV[j * 2 + 1]))
end
return 1
"""
