"""What bench/pdf_corpus.py and bench/pdf_mupdf.py score alike: text cut into units (each CJK
character one unit, each other run of letters and digits one lower-cased word) and the recall
of a reference's multiset of units; a file is CJK when at least a fifth of its reference units
are CJK characters."""
import collections
import os
import re

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
WORD = re.compile(r"[^\W_]+")


def opt(args, name, default):
    """Takes `name VALUE` out of `args`, as the type of `default`; `default` when absent."""
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return type(default)(v)
    return default


def units(text):
    cjk = CJK.findall(text)
    words = [w.lower() for w in WORD.findall(CJK.sub(" ", text))]
    return collections.Counter(words) + collections.Counter(cjk), len(cjk)


def text_of(path):
    """A text file's contents, empty when there is none."""
    return open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""


def score(ref_text, text):
    """(reference units, recall or None when the reference has none, whether it is CJK),
    and the units of `text`."""
    ref, ref_cjk = units(ref_text)
    n_ref = sum(ref.values())
    got, _ = units(text)
    recall = sum((ref & got).values()) / n_ref if n_ref else None
    return n_ref, recall, n_ref > 0 and ref_cjk * 5 >= n_ref, got


def pct(a, b):
    return f"{100 * a / b:.1f} %" if b else "n/a"
