-- wrk script for POST /v1/payments: a unique merchant_order_no per request (duplicates are
-- refused with 409), the status of every answer counted, and one JSON summary line at the end.
--
--   wrk -t1 -c16 -d10s -s bench/wrk_payments.lua http://127.0.0.1:8080/v1/payments \
--       -- <run prefix> <api key> [idempotency: 0|1]
--
-- The run prefix makes order numbers unique across wrk runs against the same database.

local threads = {}
local next_thread_id = 1

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "bench"
  local api_key = args[2] or ""
  with_idempotency_key = args[3] == "1"
  sequence = 0
  statuses = {}
  base_headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. api_key,
  }
end

function request()
  sequence = sequence + 1
  local order_no = prefix .. "-" .. thread_id .. "-" .. sequence
  local body = '{"amount":100,"currency":"CNY","merchant_order_no":"' .. order_no
    .. '","channel":"wechatpay","method":"native","description":"A cup of tea"}'
  local headers = {}
  for name, value in pairs(base_headers) do
    headers[name] = value
  end
  if with_idempotency_key then
    headers["Idempotency-Key"] = order_no
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'PAYFRONT_BENCH_RESULT {"requests":%d,"duration_us":%d,"statuses":{%s},'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
