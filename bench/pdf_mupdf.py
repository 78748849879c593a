#!/usr/bin/env python3
"""MuPDF's text extraction against pdftotext, scored as bench/pdf_corpus.py scores engram
(run by bench/pdf-mupdf.sh; issue 18 asked for poppler or MuPDF, "whichever measures better").

usage: pdf_mupdf.py CORPUS_DIR REF_OUT_DIR [MUPDF_OUT_DIR] [--timeout S]

REF_OUT_DIR is an output folder of pdf_corpus.py: its pdftotext/<file>.txt are the references
(the very texts engram was scored against). For every *.pdf in CORPUS_DIR, serially:
  pdftotext: `pdftotext -enc UTF-8 FILE OUT` again, timed only (OUT goes to a scratch folder and
             is compared with the stored reference, to check the reference is today's pdftotext);
  mutool:    `mutool draw -q -N -i -F txt -o - FILE` (all pages; -q: no progress lines on stderr,
             -N: no ICC workflow, whose "ICC support is not available" warning would otherwise be
             printed for every file; -i: go on past a page's error, as pdftotext does).
The two alternate per file, in turns (even files pdftotext first, odd files mutool first), so
that other load on the machine weighs on both alike; each side's wall time is summed. Both run
under `timeout S` (default 60). mutool's text goes to MUPDF_OUT_DIR/mupdf/<file>.txt (default
REF_OUT_DIR), its stderr to MUPDF_OUT_DIR/mupdf-stderr.log (the first 64 KiB of each file's; only
sizes are printed); per-file figures to MUPDF_OUT_DIR/mupdf-results.json.

Scoring is pdf_corpus.py's: units (each CJK character one unit, each run of other letters and
digits a lowercased word); a file is scored when pdftotext reads >= 50 units; recall = share of
pdftotext's multiset of units that mutool's text also holds; CJK when >= a fifth of the
reference units are CJK characters.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

from pdf_scoring import opt, pct, score, text_of

ARGS = sys.argv[1:]


TIMEOUT = opt(ARGS, "--timeout", 60.0)
corpus, ref_out = ARGS[:2]
out = ARGS[2] if len(ARGS) > 2 else ref_out

ref_dir = os.path.join(ref_out, "pdftotext")
mu_dir = os.path.join(out, "mupdf")
os.makedirs(mu_dir, exist_ok=True)
scratch = tempfile.mkdtemp(prefix="pdf-mupdf-ref.")
stderr_log = open(os.path.join(out, "mupdf-stderr.log"), "wb")
files = sorted(f for f in os.listdir(corpus) if f.lower().endswith(".pdf"))


def outcome(rc):
    # timeout(1) answers 124 when it stopped the command, 128+N when the command died of signal N
    # (and a negative code if timeout itself was killed).
    if rc == 124:
        return "timeout"
    if rc < 0 or rc > 128:
        return "crash"
    return "ok" if rc == 0 else "error"


def run_pdftotext(f):
    dst = os.path.join(scratch, f + ".txt")
    r = subprocess.run(["timeout", str(int(TIMEOUT)), "pdftotext", "-enc", "UTF-8", os.path.join(corpus, f), dst],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    same = None
    ref_path = os.path.join(ref_dir, f + ".txt")
    if os.path.exists(dst) and os.path.exists(ref_path):
        with open(dst, "rb") as a, open(ref_path, "rb") as b:
            same = a.read() == b.read()
    if os.path.exists(dst):
        os.remove(dst)
    return r.returncode, same


def run_mutool(f):
    # stderr goes to a file: a broken file can make MuPDF print a warning per operator, gigabytes
    # of it within the timeout; all of it is counted, its first 64 KiB kept in the log.
    with open(os.path.join(mu_dir, f + ".txt"), "wb") as text, tempfile.TemporaryFile() as err:
        r = subprocess.run(["timeout", str(int(TIMEOUT)), "mutool", "draw", "-q", "-N", "-i", "-F", "txt", "-o", "-",
                            os.path.join(corpus, f)], stdout=text, stderr=err)
        size = err.tell()
        if size:
            err.seek(0)
            stderr_log.write(f"== {f} ({size} bytes)\n".encode() + err.read(65536) + b"\n")
    return r.returncode, size


ref_secs = mu_secs = 0.0
info = {}
for i, f in enumerate(files):
    for side in (("ref", "mu") if i % 2 == 0 else ("mu", "ref")):
        started = time.monotonic()
        if side == "ref":
            ref_rc, same = run_pdftotext(f)
            ref_secs += time.monotonic() - started
        else:
            mu_rc, err_bytes = run_mutool(f)
            took = time.monotonic() - started
            mu_secs += took
    info[f] = {"mutool_rc": mu_rc, "mutool_status": outcome(mu_rc), "mutool_secs": took,
               "mutool_stderr_bytes": err_bytes, "pdftotext_rc": ref_rc, "ref_same": same}

# Scores.
rows = []
for f in files:
    n_ref, recall, is_cjk, mu = score(text_of(os.path.join(ref_dir, f + ".txt")), text_of(os.path.join(mu_dir, f + ".txt")))
    rows.append({"file": f, "ref_units": n_ref, "mutool_units": sum(mu.values()), "cjk": is_cjk, "recall": recall, **info[f]})
with open(os.path.join(out, "mupdf-results.json"), "w") as fh:
    json.dump({"rows": rows, "pdftotext_secs": ref_secs, "mutool_secs": mu_secs}, fh, indent=1)
stderr_log.close()
os.rmdir(scratch)

scored = [r for r in rows if r["ref_units"] >= 50]
good = [r for r in scored if r["recall"] >= 0.9]
cjk = [r for r in scored if r["cjk"]]
cjk_good = [r for r in cjk if r["recall"] >= 0.9]
count = collections.Counter(r["mutool_status"] for r in rows)


print(f"files: {len(files)}; pdftotext read >= 50 units from {len(scored)}")
print(f"recall >= 0.9: {len(good)}/{len(scored)} = {pct(len(good), len(scored))}")
print(f"  CJK files: {len(cjk_good)}/{len(cjk)} = {pct(len(cjk_good), len(cjk))}")
print(f"  non-CJK:   {len(good) - len(cjk_good)}/{len(scored) - len(cjk)} = {pct(len(good) - len(cjk_good), len(scored) - len(cjk))}")
print(f"mean recall over scored files: {sum(r['recall'] for r in scored) / max(1, len(scored)):.4f}")
print(f"mutool outcomes: {dict(count)} (crashes: {count['crash']}, timeouts: {count['timeout']})")
crashes = [f"{r['file']} ({r['mutool_rc']})" for r in rows if r["mutool_status"] == "crash"]
if crashes:
    print(f"  crashed: {', '.join(crashes)}")
print(f"mutool stderr: {sum(r['mutool_stderr_bytes'] for r in rows)} bytes from "
      f"{sum(1 for r in rows if r['mutool_stderr_bytes'])} files")
diff = sum(1 for r in rows if r["ref_same"] is False)
print(f"pdftotext re-run: {diff} files differ from the stored references")
print(f"time: pdftotext {ref_secs:.1f} s, mutool {mu_secs:.1f} s (ratio {mu_secs / ref_secs:.2f})")
print("CJK files:")
for r in cjk:
    print(f"  {r['file']}: {r['ref_units']} units, recall {r['recall']:.3f}, {r['mutool_status']}")
print("scored files under 0.9:")
for r in sorted(scored, key=lambda r: r["recall"]):
    if r["recall"] < 0.9:
        print(f"  {r['file']}: {r['ref_units']} units, recall {r['recall']:.3f}, {r['mutool_status']}")
