#!/usr/bin/env python3
"""PDF extraction quality and speed against pdftotext (run by bench/pdf-corpus.sh).

usage: pdf_corpus.py CORPUS_DIR OUT_DIR ENGRAM_EXTRACT [--ocr-pages N] [--timeout S] [--memory-mb M] [--rescore]

For every *.pdf in CORPUS_DIR:
  reference: `pdftotext -enc UTF-8 FILE OUT` under `timeout`, one process per file;
  engram:    the real worker binary `engram-extract`, spoken to over its own protocol (as
             src/extract/worker.rs does: the worker first sends its ready frame; then each
             request is a frame of JSON (a frame: an 8-byte little-endian length, then the
             bytes), then a frame of the file's bytes; the answer is one frame of JSON
             Result<Document, Skip>, after a {"progress":1} frame for each page of OCR begun,
             each of which starts the file's clock again). One worker serves file after file;
             one that dies or passes the wall-clock timeout is counted (crash / timeout) and
             replaced.
Each file goes to pdftotext, then to the worker, serially; each side's time is summed (the
worker's start and end are counted in its time).

Scoring: text is cut into units: each CJK character (Han, kana, Hangul) is a unit, and each
run of other letters and digits is a word, lowercased. A file counts when pdftotext reads at
least 50 units from it; its recall is the share of pdftotext's multiset of units that engram's
text also holds (multiset intersection / reference size). A file is CJK when at least a fifth
of its reference units are CJK characters.

Nothing of a document's text is printed: only file names, counts and figures. The worker's
stderr is collected into OUT_DIR/worker-stderr.log to be checked, not shown.
"""
import collections
import json
import os
import re
import subprocess
import sys
import time
import html as htmllib

from pdf_scoring import opt, pct, score, text_of, units
from worker_protocol import read_message, worker_env, write_frames

ARGS = sys.argv[1:]


OCR_PAGES = opt(ARGS, "--ocr-pages", 50)
TIMEOUT = opt(ARGS, "--timeout", 60.0)
MEMORY_MB = opt(ARGS, "--memory-mb", 2048)
RESCORE = "--rescore" in ARGS  # score OUT_DIR's texts again without extracting
if RESCORE:
    ARGS.remove("--rescore")
corpus, out, worker_bin = ARGS[:3]
os.makedirs(out, exist_ok=True)

files = sorted(f for f in os.listdir(corpus) if f.lower().endswith(".pdf"))

# Reference.
ref_dir = os.path.join(out, "pdftotext")
os.makedirs(ref_dir, exist_ok=True)
ref_status = {}


def reference(f):
    dst = os.path.join(ref_dir, f + ".txt")
    r = subprocess.run(["timeout", str(int(TIMEOUT)), "pdftotext", "-enc", "UTF-8", os.path.join(corpus, f), dst],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ref_status[f] = r.returncode


# engram-extract.
class Worker:
    def __init__(self):
        self.err = open(os.path.join(out, "worker-stderr.log"), "ab")
        self.p = subprocess.Popen([worker_bin, "--memory-mb", str(MEMORY_MB)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.err, env=worker_env())
        self.ready = False

    def wait_ready(self, deadline):
        """The worker's first frame says it is sandboxed and speaks this protocol."""
        if not self.ready:
            hello = self.answer(deadline)
            if hello != {"ready": 1}:
                sys.exit(f"the worker answered {hello!r} instead of its ready frame: another protocol version")
            self.ready = True

    def send(self, name, data):
        req = json.dumps({"name": name, "pdf": {"ocr_pages": OCR_PAGES, "ocr_languages": "eng+chi_sim"},
                          "cpu_secs": int(2 * TIMEOUT)}).encode()  # as engram: twice the wall clock
        write_frames(self.p.stdin, req, data)

    def answer(self, deadline):
        return read_message(self.p.stdout.fileno(), deadline)

    def kill(self):
        self.p.kill()
        self.p.wait()


eng_dir = os.path.join(out, "engram")
os.makedirs(eng_dir, exist_ok=True)
if not RESCORE:
    open(os.path.join(out, "worker-stderr.log"), "wb").close()
results = {}
worker = None
progress = open(os.path.join(out, "progress.log"), "w")
# Each file is read by pdftotext, then by the worker, so that other load on the machine weighs
# on both alike; each side's time is summed.
ref_secs = eng_secs = 0.0
if RESCORE:
    before = json.load(open(os.path.join(out, "results.json")))
    ref_secs, eng_secs = before["pdftotext_secs"], before["engram_secs"]
    for r in before["rows"]:
        ref_status[r["file"]] = r["pdftotext_rc"]
        results[r["file"]] = (r["status"], r["detail"])
    files = [f for f in files if f in results]
for f in files if not RESCORE else []:
    started = time.monotonic()
    reference(f)
    ref_secs += time.monotonic() - started
    started = time.monotonic()
    progress.write(f"{f}\t")
    progress.flush()
    with open(os.path.join(corpus, f), "rb") as fh:
        data = fh.read()
    if worker is None:
        worker = Worker()
    deadline = time.monotonic() + TIMEOUT
    try:
        worker.wait_ready(deadline)
        worker.send(f, data)
        a = worker.answer(deadline)
        # The worker says it goes on (one frame per page of OCR it begins): as engram does, the
        # file's clock starts again, at most once per page of OCR allowed.
        restarts = OCR_PAGES
        while a == {"progress": 1}:
            if restarts > 0:
                restarts -= 1
                deadline = max(deadline, time.monotonic() + TIMEOUT)
            a = worker.answer(deadline)
    except TimeoutError:
        worker.kill()
        worker = None
        results[f] = ("timeout", None)
    except (EOFError, BrokenPipeError):
        worker.kill()
        worker = None
        results[f] = ("crash", None)
    else:
        if "Ok" in a:
            with open(os.path.join(eng_dir, f + ".txt"), "w", encoding="utf-8") as fh:
                fh.write(a["Ok"]["text"])
            results[f] = ("ok", len(a["Ok"].get("sections", [])))
        else:
            results[f] = ("skip", a["Err"])
    eng_secs += time.monotonic() - started
    progress.write(f"{results[f][0]}\t{time.monotonic() - started:.2f}\n")
    progress.flush()
started = time.monotonic()
if worker is not None:
    worker.p.stdin.close()
    worker.p.wait()
if not RESCORE:
    eng_secs += time.monotonic() - started

# Scores.
rows = []
for f in files:
    n_ref, recall, is_cjk, _ = score(text_of(os.path.join(ref_dir, f + ".txt")), text_of(os.path.join(eng_dir, f + ".txt")))
    status, detail = results[f]
    rows.append({"file": f, "ref_units": n_ref, "cjk": is_cjk, "recall": recall,
                 "status": status, "detail": detail if status == "skip" else None, "pdftotext_rc": ref_status[f]})


def visible_reference(f):
    """pdftotext's units from the words it places inside each page's crop box (what a viewer
    shows), from `pdftotext -bbox` and `pdfinfo -box`; pages turned by /Rotate count whole."""
    path = os.path.join(corpus, f)
    info = subprocess.run(["timeout", str(int(TIMEOUT)), "pdfinfo", "-box", "-f", "1", "-l", "100000", path],
                          capture_output=True, text=True, errors="replace").stdout
    boxes, rot = {}, {}
    for m in re.finditer(r"^Page\s+(\d+) (MediaBox|CropBox):\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", info, re.M):
        boxes[(int(m[1]), m[2])] = [float(m[i]) for i in range(3, 7)]
    for m in re.finditer(r"^Page\s+(\d+) rot:\s+(\d+)", info, re.M):
        rot[int(m[1])] = int(m[2])
    html = subprocess.run(["timeout", str(int(TIMEOUT)), "pdftotext", "-enc", "UTF-8", "-bbox", path, "-"],
                          capture_output=True, text=True, errors="replace").stdout
    words, page = [], 0
    for m in re.finditer(r'<page |<word xMin="([^"]+)" yMin="([^"]+)" xMax="([^"]+)" yMax="([^"]+)">(.*?)</word>', html):
        if m[0].startswith("<page"):
            page += 1
            continue
        media, crop = boxes.get((page, "MediaBox")), boxes.get((page, "CropBox"))
        if media and crop and rot.get(page, 0) == 0:
            x, y = (float(m[1]) + float(m[3])) / 2, (float(m[2]) + float(m[4])) / 2
            left, right = crop[0] - media[0], crop[2] - media[0]
            top, bottom = media[3] - crop[3], media[3] - crop[1]
            if not (left <= x <= right and top <= y <= bottom):
                continue
        words.append(htmllib.unescape(m[5]))
    return units(" ".join(words))[0]


for r in rows:
    if r["ref_units"] >= 50 and r["recall"] < 0.9:
        vis = visible_reference(r["file"])
        eng_path = os.path.join(eng_dir, r["file"] + ".txt")
        eng, _ = units(open(eng_path, encoding="utf-8").read() if os.path.exists(eng_path) else "")
        n = sum(vis.values())
        r["visible_units"] = n
        r["visible_recall"] = sum((vis & eng).values()) / n if n else None

with open(os.path.join(out, "results.json"), "w") as fh:
    json.dump({"rows": rows, "pdftotext_secs": ref_secs, "engram_secs": eng_secs}, fh, indent=1)

scored = [r for r in rows if r["ref_units"] >= 50]
good = [r for r in scored if r["recall"] >= 0.9]
cjk = [r for r in scored if r["cjk"]]
cjk_good = [r for r in cjk if r["recall"] >= 0.9]
count = collections.Counter(r["status"] for r in rows)
skips = collections.Counter(str(r["detail"]) for r in rows if r["status"] == "skip")
stderr_bytes = os.path.getsize(os.path.join(out, "worker-stderr.log"))


print(f"files: {len(files)}; pdftotext read >= 50 units from {len(scored)}")
print(f"recall >= 0.9: {len(good)}/{len(scored)} = {pct(len(good), len(scored))}")
print(f"  CJK files: {len(cjk_good)}/{len(cjk)} = {pct(len(cjk_good), len(cjk))}")
print(f"  non-CJK:   {len(good) - len(cjk_good)}/{len(scored) - len(cjk)} = {pct(len(good) - len(cjk_good), len(scored) - len(cjk))}")
print(f"mean recall over scored files: {sum(r['recall'] for r in scored) / max(1, len(scored)):.4f}")
print(f"engram outcomes: {dict(count)}")
print(f"skips: {dict(skips)}")
print(f"worker stderr: {stderr_bytes} bytes")
print(f"time: pdftotext {ref_secs:.1f} s, engram-extract {eng_secs:.1f} s (ratio {eng_secs / ref_secs:.2f})")
print("CJK files:")
for r in cjk:
    print(f"  {r['file']}: {r['ref_units']} units, recall {r['recall']:.3f}, {r['status']}")
print("scored files under 0.9 (visible: recall of the words pdftotext places inside the crop box):")
for r in sorted(scored, key=lambda r: r["recall"]):
    if r["recall"] < 0.9:
        vis = r.get("visible_recall")
        vis = f"{vis:.3f} of {r['visible_units']}" if vis is not None else "n/a"
        print(f"  {r['file']}: {r['ref_units']} units, recall {r['recall']:.3f}, visible {vis}, {r['status']}"
              f"{' ' + str(r['detail']) if r['detail'] else ''}")
visible_good = len(good) + sum(1 for r in scored if r["recall"] < 0.9 and (r.get("visible_recall") or 0) >= 0.9)
print(f"counting only words inside the crop box: {visible_good}/{len(scored)} = {pct(visible_good, len(scored))}")
