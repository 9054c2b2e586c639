-- 90 % reads, 10 % writes over apps, releases and formations, at random.
-- BENCH_IDS names a file of "app_id release_id artifact_id" lines (seeded by the harness).
-- Reads: an app, its releases, its formations, its current release, a release.
-- Writes: an app's meta (POST /apps/:id), a new release, a formation's scale (PUT).
local auth = os.getenv("BENCH_AUTH")
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  local app, release, artifact = line:match("(%S+) (%S+) (%S+)")
  ids[#ids + 1] = {app = app, release = release, artifact = artifact}
end
local json = {["Authorization"] = auth, ["Content-Type"] = "application/json",
              ["Accept"] = "application/json"}
local plain = {["Authorization"] = auth, ["Accept"] = "application/json"}
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(1000 + tid)
  counter = 0
end

function request()
  counter = counter + 1
  local t = ids[math.random(#ids)]
  local r = math.random(100)
  if r <= 30 then
    return wrk.format("GET", "/apps/" .. t.app, plain)
  elseif r <= 45 then
    return wrk.format("GET", "/apps/" .. t.app .. "/releases", plain)
  elseif r <= 60 then
    return wrk.format("GET", "/apps/" .. t.app .. "/formations", plain)
  elseif r <= 75 then
    return wrk.format("GET", "/apps/" .. t.app .. "/release", plain)
  elseif r <= 90 then
    return wrk.format("GET", "/releases/" .. t.release, plain)
  elseif r <= 94 then
    local body = string.format('{"meta":{"n":"%d-%d"}}', tid, counter)
    return wrk.format("POST", "/apps/" .. t.app, json, body)
  elseif r <= 97 then
    local body = string.format(
      '{"artifact":"%s","app_id":"%s","env":{"N":"%d-%d"},"processes":{"web":{"cmd":["web"]}}}',
      t.artifact, t.app, tid, counter)
    return wrk.format("POST", "/releases", json, body)
  else
    local body = string.format('{"processes":{"web":%d}}', counter % 5)
    return wrk.format("PUT", "/apps/" .. t.app .. "/formations/" .. t.release, json, body)
  end
end

-- done(): the summary line every script prints, kept beside this one.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")
