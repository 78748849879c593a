"""Python reference for benches/embed.rs: sentence-transformers (PyTorch) on the same texts.

Usage: python embed_reference.py MODEL_DIR TEXTS.json
TEXTS.json is {"chunks": [...], "sentences": [...]} as written by `cargo bench --bench embed`
(EMBED_TEXTS_OUT). Prints one line per measurement, in the bench's own format. Run it from a
throwaway virtualenv with sentence-transformers installed (bench/embed.sh makes one); tests never
use it.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, texts_path = sys.argv[1], sys.argv[2]
texts = json.load(open(texts_path, encoding="utf-8"))
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = 256
chunks, sentences = texts["chunks"], texts["sentences"]
print("torch %s, %d threads" % (torch.__version__, torch.get_num_threads()))
model.encode(chunks[:8], batch_size=8)  # warm up


def rate(items, batch):
    start = time.perf_counter()
    model.encode(items, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True)
    return time.perf_counter() - start


for batch in [1, 4, 8, 16, 64]:
    secs = rate(chunks, batch)
    print("chunks batch %d: %.1f chunks/s" % (batch, len(chunks) / secs))
for batch in [1, 12]:
    secs = rate(sentences, batch)
    print("sentences batch %d: %.1f ms each" % (batch, secs * 1000 / len(sentences)))
n = 50
start = time.perf_counter()
for i in range(n):
    model.encode(["when does my lease end %d" % i])
print("query: %.1f ms" % ((time.perf_counter() - start) * 1000 / n))

# The same model with its dense layers in bf16 (autocast: oneDNN uses AMX tiles where the CPU has
# them), the arithmetic engram uses on such CPUs; sentence-transformers' default is f32 above.
with torch.autocast("cpu", dtype=torch.bfloat16):
    model.encode(chunks[:8], batch_size=8)  # warm up
    for batch in [1, 16]:
        secs = rate(chunks, batch)
        print("bf16 autocast, chunks batch %d: %.1f chunks/s" % (batch, len(chunks) / secs))
