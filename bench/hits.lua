-- wrk script for bench/ingest.py: realistic POST /tracking hits.
-- Browser user agents rotate over the list in bench_uas.lua (written by the bench),
-- every hit has a unique url and pv_id, bodies are ~300 bytes of form data.
local uas = dofile(os.getenv("BENCH_UAS"))
local counter = 0
local prefix = os.getenv("BENCH_PREFIX") or "r"

request = function()
  counter = counter + 1
  local ua = uas[(counter % #uas) + 1]
  local body = "idsite=47&rec=1&apiv=1&send_image=0"
    .. "&url=https%3A%2F%2Fhanoi.gov.vn%2Ftin-tuc%2Fchinh-tri%2F" .. prefix .. "-" .. counter
    .. "%3Futm_source%3Dzalo"
    .. "&action_name=Th%C3%A0nh%20ph%E1%BB%91%20H%C3%A0%20N%E1%BB%99i%20-%20Tin%20t%E1%BB%A9c"
    .. "&urlref=https%3A%2F%2Fwww.google.com%2F&res=1920x1080&lang=vi-VN"
    .. "&pv_id=" .. string.format("%06x", counter % 16777216)
    .. "&_id=3f2a9c1b7d4e5f60&rand=" .. counter .. "&h=10&m=24&s=" .. (counter % 60)
  return wrk.format("POST", "/tracking", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["User-Agent"] = ua,
    ["Accept-Language"] = "vi-VN,vi;q=0.9,en;q=0.8",
    ["Referer"] = "https://hanoi.gov.vn/",
  }, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH {\"requests\": %d, \"duration_us\": %d, \"non2xx\": %d, \"connect\": %d, " ..
    "\"read\": %d, \"write\": %d, \"timeout\": %d, \"p50_us\": %d, \"p99_us\": %d}\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
