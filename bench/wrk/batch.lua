-- POST /v1/scores/batch with BATCH random accounts in global (bench/api.py).
-- Environment: N (accounts), BATCH, SEED, KEY (an API key; empty for the public).
package.path = os.getenv("LUA_DIR") .. "/?.lua;" .. package.path
require("report")
local n = tonumber(os.getenv("N"))
local batch = tonumber(os.getenv("BATCH"))
local key = os.getenv("KEY") or ""

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "1"))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
end

request = function()
  local names = {}
  for i = 1, batch do
    names[i] = string.format('"acct%08d.near"', math.random(1, n))
  end
  return wrk.format(nil, "/v1/scores/batch", nil, '{"accounts": [' .. table.concat(names, ",") .. ']}')
end

done = function(summary, latency, requests) report(summary, latency) end
