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

-- done(): the summary line every script prints, kept beside this one.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")
