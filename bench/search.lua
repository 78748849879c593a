-- wrk script for bench/api.sh: each request a random query of the file $QUERIES (one a line)
-- to /api/search, with the token of $TOKEN; at the end one JSON line like bench/load.py's.
local queries = {}
for line in io.lines(os.getenv("QUERIES")) do
    if #line > 0 then queries[#queries + 1] = line end
end
local token = os.getenv("TOKEN")

local function encode(s)
    return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Each connection draws its own sequence.
function setup(thread)
    thread:set("seed", math.random(1, 1000000))
end

function init()
    math.randomseed(seed)
end

function request()
    local q = queries[math.random(#queries)]
    return wrk.format("GET", "/api/search?q=" .. encode(q) .. "&limit=10", { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
    io.write(string.format('{"requests": %d, "errors": %d, "p50_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f, "per_second": %.1f}\n',
        summary.requests, errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        summary.requests / (summary.duration / 1e6)))
end
