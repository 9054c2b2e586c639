-- A fixed request with the bench's headers; the summary is printed as one JSON line.
-- Set by the harness through the environment: BENCH_AUTH, BENCH_ACCEPT.
local auth = os.getenv("BENCH_AUTH")
local accept = os.getenv("BENCH_ACCEPT") or "application/json"
wrk.headers["Accept"] = accept
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

-- done(): the summary line every script prints, kept beside this one.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")
