-- A fixed request with the bench's headers; the summary is printed as one JSON line.
-- Set by the harness through the environment: BENCH_AUTH, BENCH_ACCEPT.
local auth = os.getenv("BENCH_AUTH")
local accept = os.getenv("BENCH_ACCEPT") or "application/json"
wrk.headers["Accept"] = accept
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
