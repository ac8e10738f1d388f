-- wrk script for the memory endpoints (bench/storage_bench.sh).
--   wrk ... -s bench/lua/memory.lua http://host:port -- store     POST /memory/store
--   wrk ... -s bench/lua/memory.lua http://host:port -- retrieve  POST /memory/retrieve
-- Keys are drawn from bench:0 .. bench:9999 (a store run first makes every retrieve a hit
-- for most keys); values are ~100-byte JSON objects.

local mode = "store"
local keys = 10000
local text = string.rep("x", 80)

-- Each wrk thread gets its own id, so that threads draw different keys.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  mode = args[1] or "store"
  math.randomseed(os.time() * 100 + (id or 0))
end

function request()
  local key = "bench:" .. math.random(0, keys - 1)
  local body
  if mode == "store" then
    body = '{"key":"' .. key .. '","value":{"n":' .. math.random(0, 1000000) ..
           ',"text":"' .. text .. '"}}'
    return wrk.format("POST", "/memory/store", {["Content-Type"] = "application/json"}, body)
  end
  body = '{"key":"' .. key .. '"}'
  return wrk.format("POST", "/memory/retrieve", {["Content-Type"] = "application/json"}, body)
end
