"""Search-API load: N clients in parallel for S seconds, each sending one query after another.
Prints one JSON line: requests, errors, p50/p99/max milliseconds, requests per second.
Usage: python3 load.py PORT TOKEN SECONDS CLIENTS QUERIES_FILE"""
import http.client, json, random, sys, threading, time, urllib.parse

port, token, seconds, clients, qfile = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
queries = [l.strip() for l in open(qfile, encoding="utf-8") if l.strip()]
lat, errors, lock = [], [0], threading.Lock()
end = time.monotonic() + seconds

def client(seed):
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.monotonic() < end:
        q = urllib.parse.quote(rnd.choice(queries))
        t = time.monotonic()
        try:
            conn.request("GET", f"/api/search?q={q}&limit=10", headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse(); r.read()
            ok = r.status == 200
        except Exception:
            ok = False
            conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        ms = (time.monotonic() - t) * 1000
        with lock:
            if ok: lat.append(ms)
            else: errors[0] += 1

threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
took = time.monotonic() - start
lat.sort()
pick = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None
print(json.dumps({"clients": clients, "seconds": round(took, 1), "requests": len(lat), "errors": errors[0],
                  "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 1) if lat else None,
                  "per_second": round(len(lat) / took, 1)}))
