-- wrk script for bench/bench.py. One connection per wrk thread (bench.py runs `-t N -c N`),
-- so a thread's requests are sequential and it can carry state from one response to the next.
--
-- Environment:
--   BENCH_MODE      get | edit | login
--   BENCH_PATH      path to GET (get mode); "{cv}" is replaced by the thread's CV id
--   BENCH_SESSIONS  Lua file returning a list of sessions made by bench.py:
--                   { cookie = "...", csrf = "...", cv = "...", version = N, body = "..." }
--                   (body: the CV basics form without its version, "{n}" in the label
--                   standing for a text new on every edit, for edit mode;
--                   email and password for login mode)
--
-- done() prints one line "BENCH_RESULT {json}" with the counts bench.py needs: requests,
-- seconds, p50/p99 latency (ms), answers by status class, socket errors, and for edit and login
-- mode the number of successful actions (303 answers to the POST).

local mode = os.getenv("BENCH_MODE") or "get"
local path = os.getenv("BENCH_PATH") or "/"
local sessions = dofile(os.getenv("BENCH_SESSIONS"))

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

-- Thread-local state (each wrk thread has its own Lua interpreter). The counters are globals
-- because done() reads them through thread:get, which sees only globals.
local me, version, step, login_cookie, login_csrf
local sent = 0
statuses = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, other = 0 }
actions = 0
refused = 0

local function percent_encode(text)
  return (text:gsub("[^%w%-_%.~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  math.randomseed(os.time() + index)
  me = sessions[((index - 1) % #sessions) + 1]
  version = me.version
  step = 0
  statuses = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, other = 0 }
end

function request()
  if mode == "edit" then
    sent = sent + 1
    local label = tostring(index) .. "-" .. tostring(sent) .. "-" .. tostring(math.random(1000000))
    local body = me.body:gsub("{n}", label) .. "&expected_version=" .. version
      .. "&csrf_token=" .. percent_encode(me.csrf)
    return wrk.format("POST", "/cvs/" .. me.cv .. "/basics", {
      ["Cookie"] = me.cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  elseif mode == "login" then
    if step == 0 then
      -- A fresh visitor: the login page gives a session cookie and its CSRF token.
      return wrk.format("GET", "/login", { ["Cookie"] = "" })
    end
    local body = me.body .. "&next=&csrf_token=" .. percent_encode(login_csrf)
    return wrk.format("POST", "/login", {
      ["Cookie"] = login_cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  else
    return wrk.format("GET", (path:gsub("{cv}", me.cv)), { ["Cookie"] = me.cookie })
  end
end

local function count(status)
  if status >= 200 and status < 300 then statuses.s2 = statuses.s2 + 1
  elseif status >= 300 and status < 400 then statuses.s3 = statuses.s3 + 1
  elseif status >= 400 and status < 500 then statuses.s4 = statuses.s4 + 1
  elseif status >= 500 then statuses.s5 = statuses.s5 + 1
  else statuses.other = statuses.other + 1 end
end

function response(status, headers, body)
  count(status)
  if mode == "edit" then
    if status == 303 then
      version = version + 1
      actions = actions + 1
    else
      -- Counted as an error; the refusal page shows the CV's current version, so the thread
      -- can go on from there.
      refused = refused + 1
      local current = body:match('name="expected_version" value="(%d+)"')
      if current then version = tonumber(current) end
    end
  elseif mode == "login" then
    if step == 0 then
      local cookie = headers["Set-Cookie"] or headers["set-cookie"] or ""
      login_cookie = cookie:match("^([^;]+)") or ""
      login_csrf = body:match('name="csrf_token" value="([^"]+)"') or ""
      step = 1
    else
      if status == 303 then actions = actions + 1 else refused = refused + 1 end
      step = 0
    end
  end
end

function done(summary, latency, requests)
  local totals = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, other = 0 }
  local actions_total, refused_total = 0, 0
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for key, value in pairs(s) do totals[key] = totals[key] + value end
    actions_total = actions_total + thread:get("actions")
    refused_total = refused_total + thread:get("refused")
  end
  local errors = summary.errors
  local socket = errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,'
      .. '"s2":%d,"s3":%d,"s4":%d,"s5":%d,"other":%d,"socket_errors":%d,'
      .. '"actions":%d,"refused":%d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    totals.s2, totals.s3, totals.s4, totals.s5, totals.other, socket,
    actions_total, refused_total))
end
