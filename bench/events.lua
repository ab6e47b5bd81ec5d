-- events.lua - wrk: POST /v1/events with distinct ids, tenants, actors, actions and purposes.
-- BATCH=1 (default) sends one JSON event per request; BATCH=N sends N as NDJSON.
local counter = 0
local prefix = ""
local batch = tonumber(os.getenv("BATCH") or "1")
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
    '{"id":"%s-%d","time":"2026-11-25T%02d:%02d:%02dZ","tenant":"tenant-%d","actor":"actor-%d",' ..
    '"action":"%s","purpose":"%s","resource":{"id":"blob://store/%d","dataset":"%s",' ..
    '"created":"2026-11-%02dT00:00:00Z"},"quantity":%d,"attributes":{"case":"C-%d"}}',
    prefix, n, math.floor(n / 3600) % 24, math.floor(n / 60) % 60, n % 60, n % 2000, n % 20000,
    actions[(n % #actions) + 1], d[2], n, d[1], 5 + n % 20, 1 + n % 4, n % 5000)
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
