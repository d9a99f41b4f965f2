-- POST each pre-signed Stripe event to /api/payment/webhook exactly once.
-- The events come from the file named by BENCH_EVENTS: "Stripe-Signature<TAB>body" lines
-- (JSON bodies hold no raw tab or newline). Each wrk thread takes its own share of the
-- lines, builds their requests before the clock starts, and sends each one once over its
-- connections; when its last answer has arrived it stops and says "finished" on stderr
-- (wrk itself runs until its -d or a SIGINT: the bench sends SIGINT once every thread has
-- finished, and wrk prints the summary).
-- A connection with nothing left to send waits (delay()) instead of sending anything else,
-- so wrk's latency figures cover exactly these requests, every one of them.
-- Every answer must be 200 with the status "received"; any other is counted in "failed"
-- (the bench fails on it) and the last one is printed on stderr.

local requests = {}
local reserved, sent = 0, 0
-- Globals: read by done() through thread:get().
answered, failed = 0, 0
local threads = {}
local seed = 0

function setup(thread)
  seed = seed + 1
  thread:set("index", seed)
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(os.getenv("BENCH_THREADS"))
  local file = assert(io.open(os.getenv("BENCH_EVENTS"), "r"))
  local n = 0
  for line in file:lines() do
    local signature, body = line:match("^(.-)\t(.*)$")
    if signature then
      if n % count == index - 1 then
        table.insert(requests, wrk.format("POST", "/api/payment/webhook", {
          ["Stripe-Signature"] = signature,
          ["Content-Type"] = "application/json",
        }, body))
      end
      n = n + 1
    end
  end
  file:close()
  assert(#requests > 0, "no events for this thread")
end

-- Called before each request a connection would send: the next one if any is left
-- (reserved for that connection), else wait for the thread to stop.
function delay()
  if reserved < #requests then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

function request()
  if reserved == 0 then
    -- wrk's own look at the script before any connection sends (it counts the requests
    -- one call returns): nothing is sent, so nothing is used up.
    return requests[1]
  end
  sent = sent + 1
  return requests[sent]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 or not string.find(body or "", '"status":"received"', 1, true) then
    failed = failed + 1
    last_failure = status .. " " .. string.sub(body or "", 1, 300)
  end
  if answered == #requests then
    io.stderr:write("finished\n")
    io.stderr:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests_done)
  local total_failed, total_answered = 0, 0
  for _, thread in ipairs(threads) do
    total_failed = total_failed + (thread:get("failed") or 0)
    total_answered = total_answered + (thread:get("answered") or 0)
    local failure = thread:get("last_failure")
    if failure then io.stderr:write("not received: " .. failure .. "\n") end
  end
  io.write(string.format(
    '{"requests": %d, "answered": %d, "failed": %d, "duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, total_answered, total_failed, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
