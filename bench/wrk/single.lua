-- GET /v1/scores/{account} for random accounts of the bench's epoch (bench/api.py).
-- Environment: N (accounts), SEED, KEY (an API key; empty for the public).
package.path = os.getenv("LUA_DIR") .. "/?.lua;" .. package.path
require("report")
local n = tonumber(os.getenv("N"))
local key = os.getenv("KEY") or ""

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "1"))
  if key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
end

request = function()
  return wrk.format("GET", string.format("/v1/scores/acct%08d.near", math.random(1, n)))
end

done = function(summary, latency, requests) report(summary, latency) end
