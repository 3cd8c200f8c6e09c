-- wrk script that replays pre-built requests, each once, in file order (the callbacks bench:
-- genuinely signed and encrypted WeChat Pay notifications, one per order).
--
--   wrk -t1 -c16 -d60s -s bench/wrk_replay.lua http://127.0.0.1:8080 -- <file> <path>
--
-- <file> holds the requests without their request line: for each, "<byte count>\n" then the
-- header lines, a blank line and the body. Every request goes to <path> as a POST. Once all
-- were sent, the connections still free send GET /bench-replay-filler (a 404) until the last
-- real answer is in, and the run stops then (or at -d, whichever is first). Answers are
-- counted by status without the fillers; one JSON summary line at the end.

local threads = {}

-- LuaJIT's FFI (wrk is built on LuaJIT): a wall clock, and SIGINT to end the run as soon as
-- the last answer is in (wrk's main thread otherwise sleeps until -d and reports -d).
local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
    int getpid(void);
    int kill(int pid, int sig);
  ]]
end

local function now_us()
  if not has_ffi then
    return 0
  end
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local path = args[2]
  requests = {}
  while true do
    local size = file:read("*l")
    if size == nil or size == "" then
      break
    end
    table.insert(requests, "POST " .. path .. " HTTP/1.1\r\n" .. file:read(tonumber(size)))
  end
  file:close()
  filler = "GET /bench-replay-filler HTTP/1.1\r\nHost: bench\r\n\r\n"
  total = #requests
  sent = 0
  answered = 0
  statuses = {}
  verified = false
end

function request()
  -- wrk calls request() once after init() to check the request's shape, and never sends
  -- that one: answer that call with the filler so that no real request is skipped.
  if not verified then
    verified = true
    return filler
  end
  if sent < total then
    if sent == 0 then
      first_us = now_us()
    end
    sent = sent + 1
    return requests[sent]
  end
  return filler
end

function response(status, headers, body)
  if status == 404 then
    return
  end
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answered >= total then
    last_us = now_us()
    wrk.thread:stop()
    if has_ffi then
      ffi.C.kill(ffi.C.getpid(), 2)
    end
  end
end

function done(summary, latency, requests_done)
  local totals = {}
  local sent_total = 0
  local active_us = 0
  local in_file = 0
  for _, thread in ipairs(threads) do
    in_file = in_file + (thread:get("total") or 0)
    local first, last = thread:get("first_us"), thread:get("last_us")
    if first and last then
      active_us = math.max(active_us, last - first)
    end
    for status, count in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
    sent_total = sent_total + (thread:get("sent") or 0)
  end
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'PAYFRONT_BENCH_RESULT {"requests":%d,"total":%d,"sent":%d,"active_us":%d,"duration_us":%d,"statuses":{%s},'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, in_file, sent_total, active_us, summary.duration, table.concat(parts, ","),
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
