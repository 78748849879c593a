#!/usr/bin/env python3
"""Office and e-book extraction quality: engram's extraction worker against each format's own reader.

Usage: office_corpus.py FILES_DIR WORK_DIR WORKER
  FILES_DIR  the corpus files (any depth)
  WORK_DIR   where references and per-file results are written
  WORKER     the engram-extract binary

engram's text comes from its sandboxed worker (the same program and protocol engram uses: the
worker's {"ready":1}, then per file a JSON header and the bytes, each in a frame of an 8-byte
little-endian length, answered by the JSON of Result<Document, Skip>). References:
  docx/docm/dotx/odt/rtf/doc  LibreOffice (soffice --convert-to txt), when `soffice` is on PATH
  xlsx/xlsm/xlsb/xls/ods      python-calamine (calamine's own cell values)
  pptx/pptm                   python-pptx (text frames, tables, groups, notes)
  odp                         odfpy (every text:p and text:h)
  epub                        the spine's XHTML through Python's html.parser
Word recall: of the reference's words (lower-cased; CJK by character), the share also in
engram's text (as a multiset). A file is "read" at >= 90 % recall; files whose reference has
fewer than 10 words are not scored. Prints a Markdown table; nothing of a file's content is
printed.
"""
import datetime
import html.parser
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

from worker_protocol import read_message, worker_env, write_frames

FORMATS = ["docx", "docm", "dotx", "odt", "rtf", "epub", "xlsx", "xlsm", "xlsb", "xls", "ods", "pptx", "pptm", "odp", "doc"]
WRITER = {"docx", "docm", "dotx", "odt", "rtf", "doc"}
SHEETS = {"xlsx", "xlsm", "xlsb", "xls", "ods"}
TIMEOUT = 60

WORD = re.compile(r"[^\W_]+", re.UNICODE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def words(text):
    out = []
    for w in WORD.findall(text.lower()):
        if CJK.search(w):
            out.extend(c for c in w if not c.isspace())
        else:
            out.append(w)
    return Counter(out)


def recall(ref, ours):
    r, o = words(ref), words(ours)
    total = sum(r.values())
    if total == 0:
        return None, 0
    return sum(min(n, o[w]) for w, n in r.items()) / total, total


# ---------- engram's worker ----------

class Worker:
    def __init__(self, program):
        self.program = program
        self.proc = None
        self.stderr_bytes = 0

    def start(self):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([self.program, "--memory-mb", "2048"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=worker_env())
        # Once sandboxed, the worker says it is ready ({"ready":1}) before reading a request.
        read_message(self.proc.stdout.fileno(), time.monotonic() + 10)

    def stop(self):
        if self.proc:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def extract(self, name, data):
        """('ok', doc) | ('skip', reason) | ('crash', how)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        header = json.dumps({"name": name, "pdf": {"ocr_pages": 0, "ocr_languages": ""}, "cpu_secs": TIMEOUT}).encode()
        try:
            write_frames(self.proc.stdin, header, data)
            answer = read_message(self.proc.stdout.fileno(), time.monotonic() + TIMEOUT)
        except TimeoutError:
            self.stop()
            return "crash", "timed out"
        except (EOFError, BrokenPipeError):
            code = self.proc.wait()
            self.proc = None
            return "crash", f"worker ended ({code})"
        if answer.get("Err") == {"Corrupt": "its reader failed on it"}:
            # The worker answers a reader's panic, then ends; the next file gets a fresh one.
            self.proc.wait()
            self.proc = None
        if "Ok" in answer:
            return "ok", answer["Ok"]
        err = answer["Err"]
        if isinstance(err, dict):
            (kind, why), = err.items()
            return "skip", f"{kind.lower()}: {why}" if why else kind.lower()
        return "skip", err.lower()


# ---------- references ----------

def cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else "%.15g" % v
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == datetime.time() else v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def ref_sheet(path):
    from python_calamine import CalamineWorkbook
    wb = CalamineWorkbook.from_path(str(path))
    lines = []
    for name in wb.sheet_names:
        try:
            rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        except Exception:
            continue
        for row in rows:
            lines.append("\t".join(cell(v) for v in row))
    return "\n".join(lines)


def ref_pptx(path):
    from pptx import Presentation
    prs = Presentation(str(path))
    out = []

    def shapes(coll):
        for sh in coll:
            if sh.shape_type == 6 and hasattr(sh, "shapes"):  # group
                shapes(sh.shapes)
            if getattr(sh, "has_text_frame", False) and sh.has_text_frame:
                out.append(sh.text_frame.text)
            if getattr(sh, "has_table", False) and sh.has_table:
                for row in sh.table.rows:
                    out.append("\t".join(c.text for c in row.cells))

    for slide in prs.slides:
        shapes(slide.shapes)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            out.append(slide.notes_slide.notes_text_frame.text)
    return "\n".join(out)


def ref_odp(path):
    from odf import teletype, text
    from odf.opendocument import load
    doc = load(str(path))
    out = []
    for kind in (text.H, text.P):
        for el in doc.body.getElementsByType(kind):
            out.append(teletype.extractText(el))
    return "\n".join(out)


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head") and self.skip:
            self.skip -= 1
        self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def ref_epub(path):
    z = zipfile.ZipFile(path)
    container = z.read("META-INF/container.xml").decode("utf-8", "replace")
    opf_path = re.search(r'full-path="([^"]+)"', container).group(1)
    opf = z.read(opf_path).decode("utf-8", "replace")
    items = {m.group(1): m.group(2) for m in re.finditer(r'<item\b[^>]*?id="([^"]+)"[^>]*?href="([^"]+)"', opf)}
    items.update({m.group(2): m.group(1) for m in re.finditer(r'<item\b[^>]*?href="([^"]+)"[^>]*?id="([^"]+)"', opf)})
    base = PurePosixPath(opf_path).parent
    out = []
    for idref in re.findall(r'<itemref\b[^>]*?idref="([^"]+)"', opf):
        href = items.get(idref)
        if not href:
            continue
        p = _Text()
        try:
            p.feed(z.read(str(base / href) if str(base) != "." else href).decode("utf-8", "replace"))
        except KeyError:
            continue
        out.append("".join(p.out))
    return "\n".join(out)


def writer_references(files, ref_dir):
    """LibreOffice to text, a batch per 20 files (a file it hangs on costs only its batch)."""
    if not any(f.suffix.lower()[1:] in WRITER for f in files) or not shutil_which("soffice"):
        return
    todo = [f for f in files if f.suffix.lower()[1:] in WRITER]
    env = dict(os.environ, HOME=str(ref_dir / "lo-home"))
    for i in range(0, len(todo), 20):
        batch = todo[i:i + 20]
        out = ref_dir / "lo"
        out.mkdir(parents=True, exist_ok=True)
        lo = subprocess.Popen(["soffice", "--headless", "--convert-to", "txt:Text (encoded):UTF8", "--outdir", str(out)]
                              + [str(f) for f in batch], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        try:
            lo.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(lo.pid, 9)  # the session this batch started, nothing else
            lo.wait()


def shutil_which(name):
    import shutil
    return shutil.which(name)


def reference(f, ref_dir):
    ext = f.suffix.lower()[1:]
    if ext in WRITER:
        # LibreOffice names its output after the input's stem: files are given unique stems below.
        txt = ref_dir / "lo" / (f.stem + ".txt")
        return txt.read_text("utf-8", "replace") if txt.exists() else None
    try:
        if ext in SHEETS:
            return ref_sheet(f)
        if ext in ("pptx", "pptm"):
            return ref_pptx(f)
        if ext == "odp":
            return ref_odp(f)
        if ext == "epub":
            return ref_epub(f)
    except (Exception, BaseException) as e:  # python-calamine's panics are BaseExceptions
        if isinstance(e, KeyboardInterrupt):
            raise
        return None
    return None


def main():
    files_dir, work, program = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    work.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in files_dir.rglob("*") if p.is_file() and p.suffix.lower()[1:] in FORMATS)
    writer_references(files, work)
    worker = Worker(program)
    worker.stderr_path = work / "worker-stderr"
    open(worker.stderr_path, "wb").close()
    rows = []
    started = time.monotonic()
    for f in files:
        ext = f.suffix.lower()[1:]
        status, result = worker.extract(f.name, f.read_bytes())
        ours = result["text"] if status == "ok" else ""
        ref = reference(f, work)
        r, n = recall(ref, ours) if ref is not None else (None, 0)
        rows.append({"file": str(f.relative_to(files_dir)), "ext": ext, "status": status,
                     "detail": "" if status == "ok" else result, "ref_words": n, "recall": r,
                     "sections": len(result.get("sections", [])) if status == "ok" else 0,
                     "title": bool(result.get("title")) if status == "ok" else False})
    worker.stop()
    elapsed = time.monotonic() - started
    with open(work / "results.jsonl", "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")

    print("| format | files | indexed | skipped (reasons) | crashes | scored (reference >= 10 words) | read (>= 90 % recall) | median recall |")
    print("|---|---|---|---|---|---|---|---|")
    for ext in FORMATS:
        rs = [r for r in rows if r["ext"] == ext]
        if not rs:
            continue
        ok = [r for r in rs if r["status"] == "ok"]
        skipped = Counter(r["detail"].split(":")[0] for r in rs if r["status"] == "skip")
        crashes = [r for r in rs if r["status"] == "crash"]
        scored = [r for r in rs if r["recall"] is not None and r["ref_words"] >= 10]
        read = [r for r in scored if r["recall"] >= 0.9]
        recalls = sorted(r["recall"] for r in scored)
        median = f"{100 * recalls[len(recalls) // 2]:.1f} %" if recalls else "–"
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())) or "0"
        print(f"| {ext} | {len(rs)} | {len(ok)} | {reasons} | {len(crashes)} | {len(scored)} | {len(read)} ({100 * len(read) / max(1, len(scored)):.0f} %) | {median} |")
    stderr = os.path.getsize(worker.stderr_path)
    print(f"\n{len(rows)} files in {elapsed:.1f} s; worker stderr: {stderr} bytes; per-file results in {work / 'results.jsonl'}")


if __name__ == "__main__":
    main()
