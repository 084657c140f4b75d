-- wrk script for bench/bench-load.sh: POST one image file (path in env LOAD_IMAGE)
-- as the raw body of every request.
local f = assert(io.open(os.getenv("LOAD_IMAGE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"

local codes = {}
response = function(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
    local n = summary.requests
    local secs = summary.duration / 1e6
    io.write(string.format("RESULT rps=%.2f p50_ms=%.1f p99_ms=%.1f requests=%d errors=%d non2xx=%d\n",
        n / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, n,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status))
end
