-- wrk script for the soak (bench/soak.sh): a mix of every kind of request, drawn at random per
-- request, with the answers counted per kind and status and printed at the end.
--   chat          POST /v1/chat/completions, upstream answering in 20 ms
--   stream        the same with "stream": true, 8 events 20 ms apart
--   embed         POST /v1/embeddings, two inputs
--   store/get/del POST /memory/store, POST /memory/retrieve, DELETE /memory/{key} over 2,000 keys
--   fault:<name>  a chat or a stream through a model whose upstream misbehaves (soak.sh's
--                 fault models: 1xx, short and long Content-Length, gzip, resets, drip, large
--                 heads, bad chunking, HTTP/0.9, HTML, errors, cut streams)
-- The cancellations (clients that go away mid-request) come from soak.sh's curl loop.

local kinds = {}
local function kind(name, weight, make)
  kinds[#kinds + 1] = {name = name, weight = weight, make = make}
end

local json = {["Content-Type"] = "application/json"}
-- Each chat carries a token of its own, which the test upstream echoes back ("echo: ..."): a
-- 200 answer without it is another request's answer, counted as "MIXED" (never expected).
local serial = 0
local token = nil
local function chat(model, stream)
  serial = serial + 1
  token = "t" .. (id or 0) .. "x" .. serial .. "z"
  return wrk.format("POST", "/v1/chat/completions", json,
    '{"model":"' .. model .. '","stream":' .. tostring(stream) ..
    ',"messages":[{"role":"system","content":"You are terse."},' ..
    '{"role":"user","content":"' .. token .. '"}],"max_tokens":32}')
end
local function key() return "soak:" .. math.random(0, 1999) end

kind("chat", 30, function() return chat("soak-chat", false) end)
kind("stream", 15, function() return chat("soak-stream", true) end)
kind("embed", 10, function()
  return wrk.format("POST", "/v1/embeddings", json,
    '{"model":"soak-embed","input":["first text to embed","second text"]}')
end)
kind("store", 10, function()
  return wrk.format("POST", "/memory/store", json,
    '{"key":"' .. key() .. '","value":{"n":' .. math.random(0, 1000000) ..
    ',"text":"' .. string.rep("v", math.random(10, 400)) .. '"}}')
end)
kind("get", 10, function()
  return wrk.format("POST", "/memory/retrieve", json, '{"key":"' .. key() .. '"}')
end)
kind("del", 3, function() return wrk.format("DELETE", "/memory/" .. key()) end)

-- soak.sh configures one model per fault, named soak-fault-<name>.
local faults = {"interim", "long", "short", "gzip", "deflate", "reset", "reset-body", "drip",
                "big-head", "bad-chunk", "http09", "html", "status500", "status429", "append",
                "br"}
for _, f in ipairs(faults) do
  kind("fault:" .. f, 1, function() return chat("soak-fault-" .. f, false) end)
end
local stream_faults = {"cut", "bad-chunk", "gzip", "reset-body"}
for _, f in ipairs(stream_faults) do
  -- A stream the upstream breaks may end before the event that echoes the token: not checked.
  kind("sfault:" .. f, 1, function()
    local r = chat("soak-fault-" .. f, true)
    token = nil
    return r
  end)
end

local total_weight = 0
for _, k in ipairs(kinds) do total_weight = total_weight + k.weight end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

counts = {}
local last = nil
function init(args)
  math.randomseed(os.time() * 100 + (id or 0))
end

function request()
  token = nil
  local r = math.random() * total_weight
  for _, k in ipairs(kinds) do
    r = r - k.weight
    if r <= 0 then
      last = k.name
      return k.make()
    end
  end
  last = kinds[1].name
  return kinds[1].make()
end

-- wrk pipelines nothing here (one request per connection at a time), so the answer belongs to
-- the request made last on this thread only with one connection per thread: soak.sh runs
-- -t N -c N.
function response(status, headers, body)
  local k = (last or "?") .. " " .. status
  counts[k] = (counts[k] or 0) + 1
  if token and status == 200 and not string.find(body, token, 1, true) then
    counts["MIXED " .. k] = (counts["MIXED " .. k] or 0) + 1
    shown = (shown or 0) + 1
    if shown <= 5 then
      io.stderr:write("MIXED " .. k .. ": expected " .. token .. ", got " .. string.sub(body, 1, 400) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do all[k] = (all[k] or 0) + v end
  end
  local names = {}
  for k in pairs(all) do names[#names + 1] = k end
  table.sort(names)
  io.write("answers by kind and status:\n")
  for _, k in ipairs(names) do io.write(string.format("  %-24s %d\n", k, all[k])) end
end
