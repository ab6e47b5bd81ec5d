-- events.lua - wrk: POST /v1/events with distinct ids, tenants, actors, actions and purposes.
-- BATCH=1 (default) sends one JSON event per request; BATCH=N sends N as NDJSON.
-- START=N continues the stream of an earlier run: event n is stamped 2026-11-25T00:00:00Z
-- plus n seconds, so that times move forward as the ledger grows, as telemetry's do
-- (bench/run passes the number of records already stored).  Resources are 21 to 25
-- days old when used, whatever the time, so the verdict mix stays the same.
local counter = tonumber(os.getenv("START") or "0")
local prefix = ""
local batch = tonumber(os.getenv("BATCH") or "1")
local t0 = 1795564800 -- 2026-11-25T00:00:00Z
local actions = {"face.search", "data.read", "storage.write", "face.enroll", "video.index",
                 "data.export", "data.delete", "face.match"}
local data = {{"visa-photos", "visa-processing"}, {"border-crossings", "border-crossing"},
              {"benefits-claims", "benefits-administration"}, {"cctv-archive", "public-safety"}}
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  prefix = string.format("w%x%x", os.time(), math.random(0, 0xffffff))
  -- wrk.format(..., headers) would replace the -H headers (Authorization): set them here
  wrk.headers["Content-Type"] = batch <= 1 and "application/json" or "application/x-ndjson"
end

local function event(n)
  local d = data[(n % #data) + 1]
  return string.format(
    '{"id":"%s-%d","time":"%s","tenant":"tenant-%d","actor":"actor-%d",' ..
    '"action":"%s","purpose":"%s","resource":{"id":"blob://store/%d","dataset":"%s",' ..
    '"created":"%s"},"quantity":%d,"attributes":{"case":"C-%d"}}',
    prefix, n, os.date("!%Y-%m-%dT%H:%M:%SZ", t0 + n), n % 2000, n % 20000,
    actions[(n % #actions) + 1], d[2], n, d[1],
    os.date("!%Y-%m-%dT00:00:00Z", t0 + n - (21 + n % 4) * 86400), 5 + n % 20, n % 5000)
end

request = function()
  if batch <= 1 then
    counter = counter + 1
    return wrk.format("POST", "/v1/events", nil, event(counter))
  end
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    parts[i] = event(counter)
  end
  return wrk.format("POST", "/v1/events", nil, table.concat(parts, "\n") .. "\n")
end
