-- wrk script: POSTs a ~400-byte event or conversion with a unique id per request, so every
-- request is a new row (no dedupe shortcut), and prints a JSON summary at the end.
-- collect_refused10 is collect with every tenth body refused (422), kept as a rejection;
-- collect_refused refuses every body (the refusal path alone); collect_checked10 is its
-- control: every tenth request the same valid event with ?validate_only=true, answered (200)
-- without a write, and neither refused nor kept.
-- Environment: BENCH_KIND=collect|collect_refused10|collect_refused|collect_checked10|
--   conversion|collect_batch, BENCH_BATCH=<items per batch>, BENCH_KEY=<api key>, BENCH_CLICK=<click id>.
local kind = os.getenv("BENCH_KIND") or "collect"
local key = os.getenv("BENCH_KEY")
local click = os.getenv("BENCH_CLICK") or ""
local threads = {}
local counter = 0
local prefix = ""
local headers = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  prefix = string.format("%d-%d", tid or 0, math.random(1, 1000000000))
  headers["Authorization"] = "Bearer " .. key
  headers["Content-Type"] = "application/json"
end

local ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
  .. "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"

local batch_size = tonumber(os.getenv("BENCH_BATCH") or "500")

local function event_json(id)
  return string.format(
    '{"tag_id":"adv_001","event_name":"page_view","event_id":"%s","timestamp":1771879200,'
    .. '"page_url":"https://shop.example.com/checkout?utm_source=chat","user_agent":"%s",'
    .. '"session_id":"sess_abc","params":{"step":"shipping","value":58.0}}', id, ua)
end

function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  if kind == "collect_batch" then
    local items = {}
    for i = 1, batch_size do
      items[i] = event_json(id .. "-" .. i)
    end
    local body = '{"events":[' .. table.concat(items, ",") .. ']}'
    return wrk.format("POST", "/v1/api/collect/batch", headers, body)
  end
  if kind == "conversion" then
    local body = string.format(
      '{"click_id":"%s","conversion_time":"2026-02-19T18:00:00Z","conversion_value":49.99,'
      .. '"currency":"USD","order_id":"order-%s","event_type":"purchase_completed",'
      .. '"user_agent":"%s","customer_tier":"gold"}', click, id, ua)
    headers["Idempotency-Key"] = "idem-" .. id
    return wrk.format("POST", "/v1/api/conversion", headers, body)
  end
  if kind == "collect_refused" or (kind == "collect_refused10" and counter % 10 == 0) then
    local body = '{"tag_id":"adv_001","event_name":5,"event_id":"' .. id .. '"}'
    return wrk.format("POST", "/v1/api/collect", headers, body)
  end
  if kind == "collect_checked10" and counter % 10 == 0 then
    return wrk.format("POST", "/v1/api/collect?validate_only=true", headers, event_json(id))
  end
  return wrk.format("POST", "/v1/api/collect", headers, event_json(id))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
