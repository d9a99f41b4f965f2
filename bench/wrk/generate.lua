-- POST /api/chats/{id}/generate as one of many users.
-- Targets come from the file named by BENCH_TARGETS: "path<TAB>Authorization" lines.
-- Each wrk thread takes its own share of the users and goes round them in turn, so the
-- requests in flight at one moment come from different users, as they do in life (one
-- user's concurrent requests would queue on their account row, by design).

local targets = {}
local body = '{"content": "What is 12 * (3 + 4)?"}'
local counter = 0
local threads = {}

local function load_targets(index, count)
  local file = assert(io.open(os.getenv("BENCH_TARGETS"), "r"))
  local n = 0
  for line in file:lines() do
    local path, auth = line:match("^(.-)\t(.*)$")
    if path then
      if n % count == index - 1 then table.insert(targets, {path = path, auth = auth}) end
      n = n + 1
    end
  end
  file:close()
  assert(#targets > 0, "no targets")
end

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

function init(args)
  load_targets(tonumber(seed), tonumber(os.getenv("BENCH_THREADS")))
  counter = math.random(#targets)
end

function request()
  counter = counter % #targets + 1
  local t = targets[counter]
  return wrk.format("POST", t.path, {
    ["Authorization"] = t.auth,
    ["Content-Type"] = "application/json",
  }, body)
end

-- Keep the last failure of each thread, so a non-2xx can be explained.
function response(status, headers, resp_body)
  if status >= 300 then
    last_failure = status .. " " .. string.sub(resp_body or "", 1, 300)
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local failure = thread:get("last_failure")
    if failure then io.stderr:write("non-2xx: " .. failure .. "\n") end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "p50_us": %d, "p90_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
