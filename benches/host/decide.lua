-- wrk script: POST /v1/mmm/decide with the bundled example signals, one actor per
-- request (so fatigue cooldowns do not turn the run into suppressions only).
-- Environment: MMM_LOAD_TOKEN (a `service` token of tenant acme), MMM_LOAD_SIGNALS (the
-- directory of example signals).

local token = os.getenv("MMM_LOAD_TOKEN") or ""
local dir = os.getenv("MMM_LOAD_SIGNALS") or "examples/signals"
local names = {"large-pr.json", "ci-failed.json", "flaky-test.json", "secret-detected.json"}
local signals = {}
for _, name in ipairs(names) do
  local f = io.open(dir .. "/" .. name, "r")
  if f then
    signals[#signals + 1] = f:read("*a")
    f:close()
  end
end
if #signals == 0 then
  error("no example signals in " .. dir)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

local n = 0
local thread_id = 0
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function request()
  n = n + 1
  local signal = signals[(n % #signals) + 1]
  local actor = string.format('"actor_id": "load-%d-%d"', thread_id, n)
  signal = signal:gsub('"actor_id"%s*:%s*"[^"]*"', actor, 1)
  return wrk.format(nil, "/v1/mmm/decide", nil, '{"signal": ' .. signal .. '}')
end

local failures = 0
function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("decide answered " .. status .. ": " .. body:sub(1, 300) .. "\n")
    end
  end
end
