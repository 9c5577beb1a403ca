-- POST /v1/score with a new transaction in every request, for benchmarks/bench_serve.py.
--
--   wrk -t1 -c32 -d22s --latency -s score.lua http://127.0.0.1:8000 -- \
--       ROWS RUN FIRST START SPAN TOKEN RATE STOP THREADS
--
-- ROWS     file of request templates in time order, one a line: "<offset s>\t<JSON fields>"
--          (every canonical field but trans_num and the timestamp)
-- RUN      prefix of every trans_num: request g is "<RUN>-<g>"
-- FIRST    g of this run's first request, so that runs against one server continue
--          where the last one stopped (g counts over all threads: thread i sends i, i+T, ...)
-- START    epoch seconds of offset 0; SPAN: seconds the templates cover. Request g is
--          template g mod #rows at START + floor(g / #rows) * SPAN + its offset, so time
--          only moves forward and every card's simulated history goes on where it was.
-- TOKEN    bearer token
-- RATE     requests per second over all threads, as Poisson arrivals; 0: as fast as possible
-- STOP     seconds after the first request from which none is sent, so that none is in
--          flight when wrk stops (run wrk a little longer) and every answer is counted
-- THREADS  the -t value
--
-- done() prints one line "WRK_JSON {...}": wrk's counts and latency percentiles (us), the
-- requests sent, and the milliseconds from the first request to the last answer.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   rows, offsets = {}, {}
   for line in io.lines(args[1]) do
      local offset, fields = line:match("^(%d+)\t(.*)$")
      table.insert(offsets, tonumber(offset))
      table.insert(rows, fields)
   end
   run, first_g = args[2], tonumber(args[3])
   start, span = tonumber(args[4]), tonumber(args[5])
   headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[6] }
   thread_count = tonumber(args[9])
   rate = tonumber(args[7]) / thread_count
   stop_ms = tonumber(args[8]) * 1000
   math.randomseed(1 + id)
   sent, first, last, next_slot = 0, 0, 0, 0
end

function request()
   if first == 0 then
      -- wrk's own check of the script, before any delay(): this body is never sent.
      return wrk.format("POST", "/v1/score", headers, "{}")
   end
   local g = first_g + sent * thread_count + id
   sent = sent + 1
   local index = g % #rows + 1
   local time = start + math.floor(g / #rows) * span + offsets[index]
   local body = '{"trans_num":"' .. run .. "-" .. g
      .. '","trans_date_trans_time":"' .. os.date("!%Y-%m-%dT%H:%M:%S", time) .. '",'
      .. rows[index] .. "}"
   return wrk.format("POST", "/v1/score", headers, body)
end

-- Called before each request (wrk paces with it): after STOP, send nothing more; with a
-- rate, wait for the next arrival of a Poisson schedule kept per thread, so the pace does
-- not depend on the server's latency, as a fixed per-connection pause would.
function delay()
   local now = now_ms()
   if first == 0 then
      first, next_slot = now, now
   end
   last = now
   if now - first >= stop_ms then
      return 3600000
   end
   if rate <= 0 then
      return 0
   end
   next_slot = next_slot - math.log(1 - math.random()) * 1000 / rate
   local wait = next_slot - now
   if wait <= 0 then
      return 0
   end
   return math.floor(wait + 0.5)
end

function done(summary, latency, requests)
   local sent_all, first_all, last_all = 0, math.huge, 0
   for _, thread in ipairs(threads) do
      sent_all = sent_all + thread:get("sent")
      first_all = math.min(first_all, thread:get("first"))
      last_all = math.max(last_all, thread:get("last"))
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"sent":%d,"non_2xx_3xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"duration_us":%d,"active_ms":%.1f,"latency_us":'
      .. '{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, sent_all, e.status, e.connect, e.read, e.write, e.timeout,
      summary.duration, last_all - first_all, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
