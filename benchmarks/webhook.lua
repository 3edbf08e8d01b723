-- wrk script for benchmarks/throughput.py: POSTs webhook events, each with a unique order_no
-- and its send time `sent_ns` (CLOCK_REALTIME in ns, the same clock as Python's time.time_ns()),
-- taken when wrk builds the request, right before writing it to the socket.
-- Usage: wrk -t T -c C -d D -s webhook.lua URL -- <run prefix>
-- At the end it prints one line `WRK_JSON {...}` with requests, statuses and socket errors.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local now = ffi.new("bench_timespec")

local threads = {}
counter = 0
local prefix = "run"
statuses = {}  -- a global: done() reads it from each thread with thread:get

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "run"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  ffi.C.clock_gettime(0, now)  -- 0 = CLOCK_REALTIME
  -- sec and nsec are formatted apart: their product does not fit a Lua double exactly
  local body = string.format(
    '{"order_no":"%s-%d-%d","amount":"19.90","customer":"张伟","sent_ns":%d%09d}',
    prefix, id, counter, tonumber(now.tv_sec), tonumber(now.tv_nsec))
  return wrk.format(nil, nil, nil, body)
end

error_sample = ""  -- the first unexpected answer, for the report

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and status ~= 202 and status ~= 503 and error_sample == "" then
    error_sample = status .. " " .. string.sub(body or "", 1, 300)
  end
end

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local merged = {}
  local sample = ""
  for _, thread in ipairs(threads) do
    if sample == "" then sample = thread:get("error_sample") or "" end
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"ack_latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f},' ..
    '"error_sample":%s}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000, json_string(sample)))
end
