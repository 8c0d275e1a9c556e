-- bench/load/mixed.lua — wrk script: round-robin over the read endpoints of one run.
-- RUN_PATH (e.g. /api/v1/runs/r0123...) comes from the environment.
local run = os.getenv("RUN_PATH") or "/api/v1/runs"
local paths = { run, "/healthz", "/api/v1/runs" }
local i = 0

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
