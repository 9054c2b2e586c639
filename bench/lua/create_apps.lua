-- POST /apps with a name no other request of the run has used.
-- BENCH_PREFIX keeps names unique across runs against one database.
local auth = os.getenv("BENCH_AUTH")
local prefix = os.getenv("BENCH_PREFIX") or "b"
local threads = 0
local counter = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local body = string.format('{"name":"%s-%d-%d"}', prefix, tid, counter)
  return wrk.format("POST", "/apps",
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
