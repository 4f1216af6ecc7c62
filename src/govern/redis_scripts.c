/* redis_scripts.c — the Lua scripts of the Redis governance backend
 * (govern_redis.h). Each runs atomically inside Redis: one admission is one
 * script over every level that applies (user, key, tenant; day and month;
 * rpm and tpm), so N instances sharing one Redis see one budget, not N.
 *
 * Keys (P = governance.redis.key_prefix), one set per level L:
 *   P gen          the generation: present iff the spend below was rebuilt
 *                  from the ledger since Redis last lost its data;
 *   P s:L          hash, never expires: "d:<day start ms>", "m:<month start
 *                  ms>" = spend in nano-USD; "res" = outstanding reservations;
 *   P r:L          sorted set of reservations "<id>:<nusd>" scored by their
 *                  expiry (ms): an instance that dies never settles, so its
 *                  reservations are dropped (and "res" lowered) once expired;
 *   P g:L          hash of GCRA theoretical arrival times (µs) "rpm", "tpm";
 *                  expires when the bucket would be full again (an absent
 *                  bucket IS a full bucket, so expiry loses nothing).
 * Time is Redis's own (TIME), so instances with skewed clocks agree.
 * Numbers are Lua doubles: exact to 2^53 (9e6 USD in nano-USD; µs times). */
#include "govern/redis_scripts.h"

/* The day and month of Redis's clock; month start by days-from-civil. */
#define GR_LUA_TIME \
    "local t = redis.call('TIME')\n" \
    "local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" \
    "local now = math.floor(now_us / 1000)\n" \
    "local days = math.floor(now / 86400000)\n" \
    "local z = days + 719468\n" \
    "local era = math.floor(z / 146097)\n" \
    "local doe = z - era * 146097\n" \
    "local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)\n" \
    "local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n" \
    "local mp = math.floor((5 * doy + 2) / 153)\n" \
    "local dom = doy - math.floor((153 * mp + 2) / 5)\n" \
    "local dayf = 'd:' .. (days * 86400000)\n" \
    "local monf = 'm:' .. ((days - dom) * 86400000)\n"

/* Drop the expired reservations of level j (0-based) and lower its "res". */
#define GR_LUA_PURGE \
    "local function purge(h, z)\n" \
    "  local old = redis.call('ZRANGEBYSCORE', z, '-inf', now)\n" \
    "  if #old == 0 then return end\n" \
    "  local sum = 0\n" \
    "  for _, m in ipairs(old) do sum = sum + tonumber(string.match(m, ':(%d+)$')) end\n" \
    "  if sum > 0 then redis.call('HINCRBY', h, 'res', -sum) end\n" \
    "  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)\n" \
    "end\n" \
    "local function gcra_expire(g, tat)\n" \
    "  local ms = math.ceil((tat - now_us) / 1000) + 1000\n" \
    "  if ms < 61000 then ms = 61000 end\n" \
    "  redis.call('PEXPIRE', g, ms)\n" \
    "end\n"

/* ADMIT. KEYS: gen, then per level s:L, r:L, g:L.
 * ARGV: n, reservation member "<id>:<est cost nusd>", est cost nusd, est tokens, ttl ms, then per
 * level: name, daily, monthly, rpm, tpm (0 = unlimited).
 * Returns {"nogen"}; {"refused", what, level, limit, spent, reserved,
 * wait_ms, now_ms} (what: tokens|daily|monthly|rpm|tpm); or {"ok", now_ms,
 * has_req, lim_req, rem_req, reset_req_ms, has_tok, lim_tok, rem_tok,
 * reset_tok_ms}. Order of checks as in-process: tokens_exceed_limit, budgets
 * (day before month; user, key, tenant), rates (the longest wait named).
 * A refusal writes nothing but the purge of expired reservations. */
const char GR_LUA_ADMIT[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {'nogen'} end\n"
    GR_LUA_TIME GR_LUA_PURGE
    "local n = tonumber(ARGV[1])\n"
    "local id, cost, tok, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local function a(j, k) return ARGV[5 + 5 * j + k] end\n"
    "for j = 0, n - 1 do purge(KEYS[2 + 3 * j], KEYS[3 + 3 * j]) end\n"
    "for j = 0, n - 1 do\n"
    "  local tpm = tonumber(a(j, 5))\n"
    "  if tpm > 0 and tok > tpm then return {'refused', 'tokens', a(j, 1), tpm, 0, 0, 0, now} end\n"
    "end\n"
    "local per = {{dayf, 2, 'daily'}, {monf, 3, 'monthly'}}\n"
    "for _, p in ipairs(per) do\n"
    "  for j = 0, n - 1 do\n"
    "    local lim = tonumber(a(j, p[2]))\n"
    "    if lim > 0 then\n"
    "      local h = KEYS[2 + 3 * j]\n"
    "      local spent = tonumber(redis.call('HGET', h, p[1]) or '0')\n"
    "      local res = tonumber(redis.call('HGET', h, 'res') or '0')\n"
    "      if spent + res + cost > lim then return {'refused', p[3], a(j, 1), lim, spent, res, 0, now} end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local worst, upd = nil, {}\n"
    "local info = {0, 0, 0, 0, 0, 0, 0, 0}\n"
    "for j = 0, n - 1 do\n"
    "  local g = KEYS[4 + 3 * j]\n"
    "  for k = 4, 5 do\n"
    "    local L = tonumber(a(j, k))\n"
    "    if L > 0 then\n"
    "      local f = (k == 4) and 'rpm' or 'tpm'\n"
    "      local c = (k == 4) and 1 or tok\n"
    "      local T = 60000000 / L\n"
    "      local tat = tonumber(redis.call('HGET', g, f) or '0')\n"
    "      if tat < now_us then tat = now_us end\n"
    "      local new = tat + c * T\n"
    "      local over = new - now_us - 60000000\n"
    "      if over > 0.5 then\n"
    "        local w = math.ceil(over / 1000)\n"
    "        if worst == nil or w > worst[1] then worst = {w, f, a(j, 1), L} end\n"
    "      else\n"
    "        upd[#upd + 1] = {g, f, new}\n"
    "        local rem = math.floor((60000000 - (new - now_us)) / T + 1e-6)\n"
    "        local reset = math.ceil((new - now_us) / 1000)\n"
    "        local o = (k == 4) and 0 or 4\n"
    "        if info[o + 1] == 0 or rem < info[o + 3] then\n"
    "          info[o + 1], info[o + 2], info[o + 3], info[o + 4] = 1, L, rem, reset\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if worst then return {'refused', worst[2], worst[3], worst[4], 0, 0, worst[1], now} end\n"
    "for _, u in ipairs(upd) do\n"
    "  redis.call('HSET', u[1], u[2], string.format('%.3f', u[3]))\n"
    "  gcra_expire(u[1], u[3])\n"
    "end\n"
    "local member = id\n"
    "for j = 0, n - 1 do\n"
    "  redis.call('ZADD', KEYS[3 + 3 * j], now + ttl, member)\n"
    "  redis.call('HINCRBY', KEYS[2 + 3 * j], 'res', cost)\n"
    "end\n"
    "return {'ok', now, info[1], info[2], info[3], info[4], info[5], info[6], info[7], info[8]}\n";

/* SETTLE (and release: cost 0, token delta = -estimate). KEYS as ADMIT.
 * ARGV: n, member "<id>:<est nusd>", actual cost nusd, token delta
 * (actual - estimate), then per level its tpm (0 = none).
 * The reservation is dropped where still present (an expired one was
 * already dropped by a purge: never twice); the cost is charged to the
 * current day and month whether or not it expired: the call happened.
 * Tokens: unused ones are given back (never fuller than full), extra ones
 * charged (at most one hour's worth). Returns "nogen" without writing when
 * Redis lost its data: the ledger row of the call carries the spend into
 * the rebuild. */
const char GR_LUA_SETTLE[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 'nogen' end\n"
    GR_LUA_TIME GR_LUA_PURGE
    "local n = tonumber(ARGV[1])\n"
    "local member, cost, delta = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local est = tonumber(string.match(member, ':(%d+)$'))\n"
    "for j = 0, n - 1 do\n"
    "  local h, z, g = KEYS[2 + 3 * j], KEYS[3 + 3 * j], KEYS[4 + 3 * j]\n"
    "  if redis.call('ZREM', z, member) == 1 and est > 0 then redis.call('HINCRBY', h, 'res', -est) end\n"
    "  if cost > 0 then\n"
    "    redis.call('HINCRBY', h, dayf, cost)\n"
    "    redis.call('HINCRBY', h, monf, cost)\n"
    "  end\n"
    "  local L = tonumber(ARGV[4 + j + 1])\n"
    "  if L > 0 and delta ~= 0 then\n"
    "    local T = 60000000 / L\n"
    "    local tat = tonumber(redis.call('HGET', g, 'tpm') or '0')\n"
    "    local move = delta * T\n"
    "    if move > 3600000000 then move = 3600000000 end\n"
    "    if tat < now_us then tat = now_us end\n"
    "    local new = tat + move\n"
    "    if new <= now_us then\n"
    "      redis.call('HDEL', g, 'tpm')\n"
    "    else\n"
    "      redis.call('HSET', g, 'tpm', string.format('%.3f', new))\n"
    "      gcra_expire(g, new)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return 'ok'\n";

/* SEED: rebuild spend from the ledger after Redis lost its data. KEYS: gen,
 * then the s:L hash of every level with spend this month (ns of them), then
 * per restored reservation its r:L and s:L. ARGV: the new generation, the
 * day field, the month field, ns, then per spend key its day and month
 * spend, then per restored reservation its member, amount and ttl ms.
 * The restored reservations are the rebuilding instance's calls still in
 * flight: they were admitted against the lost data and will settle against
 * the new. A no-op (0) when gen exists: another instance (or an earlier
 * attempt) rebuilt it already and admissions since then must not be
 * overwritten. Writes the spend and gen in one step: nothing admits
 * against partial data. */
const char GR_LUA_SEED[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ns = tonumber(ARGV[4])\n"
    "for i = 1, ns do\n"
    "  redis.call('HSET', KEYS[1 + i], ARGV[2], ARGV[3 + 2 * i], ARGV[3], ARGV[4 + 2 * i])\n"
    "end\n"
    "local k, a = 2 + ns, 5 + 2 * ns\n"
    "while k < #KEYS do\n"
    "  redis.call('ZADD', KEYS[k], now + tonumber(ARGV[a + 2]), ARGV[a])\n"
    "  redis.call('HINCRBY', KEYS[k + 1], 'res', ARGV[a + 1])\n"
    "  k, a = k + 2, a + 3\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "return 1\n";

/* RESTORE: an instance whose rebuild lost the race to another one puts its
 * calls in flight back as reservations. KEYS: per reservation its r:L and
 * s:L. ARGV: per reservation its member, amount and ttl ms. One already
 * there is left alone. */
const char GR_LUA_RESTORE[] =
    "if #KEYS == 0 then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local n = 0\n"
    "for k = 1, #KEYS, 2 do\n"
    "  local a = 1 + 3 * ((k - 1) / 2)\n"
    "  if redis.call('ZSCORE', KEYS[k], ARGV[a]) == false then\n"
    "    redis.call('ZADD', KEYS[k], now + tonumber(ARGV[a + 2]), ARGV[a])\n"
    "    redis.call('HINCRBY', KEYS[k + 1], 'res', ARGV[a + 1])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/* RUN_BEGIN: a run's concurrency slot at the user and tenant levels
 * (govern_slots.h). KEYS: per level a sorted set of run leases scored by
 * their expiry (P c:L). ARGV: the lease's member, lease ms, then per level
 * its name and limit (0 = unlimited: counted, never refused). Expired
 * leases (a dead instance's runs) are dropped first. All levels or none.
 * Returns {"ok"} or {"refused", level, limit}. */
const char GR_LUA_RUN_BEGIN[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "for i = 1, #KEYS do\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)\n"
    "  local lim = tonumber(ARGV[2 + 2 * i])\n"
    "  if lim > 0 and redis.call('ZSCORE', KEYS[i], ARGV[1]) == false and\n"
    "     redis.call('ZCARD', KEYS[i]) >= lim then\n"
    "    return {'refused', ARGV[1 + 2 * i], lim}\n"
    "  end\n"
    "end\n"
    "for i = 1, #KEYS do redis.call('ZADD', KEYS[i], now + tonumber(ARGV[2]), ARGV[1]) end\n"
    "return {'ok'}\n";

/* RUN_RENEW: the live runs' leases of one instance, in one round trip.
 * KEYS: one sorted set per lease and level; ARGV: lease ms, then the
 * member of each key. A lease that expired meanwhile (Redis away longer
 * than a lease) or was lost with Redis's data is put back: the run still
 * holds its slot. Returns the number renewed. */
const char GR_LUA_RUN_RENEW[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local until_ = now + tonumber(ARGV[1])\n"
    "for i = 1, #KEYS do redis.call('ZADD', KEYS[i], until_, ARGV[1 + i]) end\n"
    "return #KEYS\n";

/* RUN_END: runs ended. KEYS: one sorted set per lease and level; ARGV: the
 * member of each key. */
const char GR_LUA_RUN_END[] =
    "for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[i]) end\n"
    "return #KEYS\n";
