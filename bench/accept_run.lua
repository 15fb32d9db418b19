-- wrk: one inference run per POST /api/v1/runs/, two new ENDPOINT outputs each.
-- TOKEN=... wrk -t2 -c32 -d20s -s bench/accept_run.lua --latency http://127.0.0.1:8801
local token = os.getenv("TOKEN")
local n = 0
local tid = math.random(1, 1e9)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token " .. token
request = function()
  n = n + 1
  local body = string.format('{"component": "infer", "start_timestamp": "2026-12-01T10:00:00+00:00", "end_timestamp": "2026-12-01T10:00:01+00:00", "inputs": ["s3://models/model_1.pkl"], "outputs": [{"name": "prediction_%d_%d_a", "pointer_type": "ENDPOINT"}, {"name": "prediction_%d_%d_b", "pointer_type": "ENDPOINT"}]}', tid, n, tid, n)
  return wrk.format(nil, "/api/v1/runs/", nil, body)
end
