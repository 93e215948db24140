"""Writes the tiny test models into tests/.fixtures/ (or the folder given as the first argument).

No model hub is reachable from CI, so the suite generates its models: random weights, but real
tokenizer metadata, so llama.cpp and ONNX Runtime load and run them like any downloaded model.
Deterministic: the same script writes byte-identical files.

    python-ml/.venv/bin/python scripts/fixtures.py [OUT_DIR]

Writes:
  tiny-chat.gguf        llama architecture, 64-dim, 2 layers, byte-level gpt2 BPE with merges, a
                        ChatML chat template, context length 2048
  tiny-embed.gguf       the same network with mean pooling, for /v1/embeddings on GGUF
  tiny-embed.onnx       input_ids + attention_mask -> last_hidden_state (32-dim)
  tokenizer.json        the same byte-level BPE as a Hugging Face tokenizer.json
  tokenizer_config.json
  tiny-transformers/    the same network as a Transformers LlamaForCausalLM (config.json, model.safetensors,
                        the tokenizer): what the Python ML service loads for generation
  tiny-classifier/      the same, as LlamaForSequenceClassification with labels negative/positive
  astronaut.png         scikit-image's astronaut (one face), for the vision tests
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from gguf import GGUFWriter, PoolingType, TokenType
from onnx import TensorProto, helper, numpy_helper

SEED = 20240601
DIM = 64
LAYERS = 2
HEADS = 4
FFN = 128
CONTEXT = 2048
ONNX_DIM = 32

CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Merges over byte-level symbols ("Ġ" is the space byte); each result is added to the vocabulary.
MERGES = [
    ("t", "h"), ("h", "e"), ("th", "e"), ("Ġ", "t"), ("Ġ", "a"), ("i", "n"), ("e", "r"), ("o", "n"), ("a", "n"),
    ("Ġ", "the"), ("r", "e"), ("e", "s"), ("o", "r"), ("Ġ", "s"), ("Ġ", "w"), ("i", "s"), ("e", "n"),
]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def vocabulary() -> tuple[list[str], list[str]]:
    byte_symbols = [bytes_to_unicode()[b] for b in range(256)]
    tokens = list(byte_symbols)
    for left, right in MERGES:
        merged = left + right
        assert left in tokens and right in tokens, (left, right)
        if merged not in tokens:
            tokens.append(merged)
    merges = [f"{left} {right}" for left, right in MERGES]
    return tokens + SPECIAL, merges


def write_gguf(path: Path, rng: np.random.Generator, tokens: list[str], merges: list[str], pooling: bool) -> None:
    vocab = len(tokens)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-embed" if pooling else "tiny-chat")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(0)  # all F32
    if pooling:
        writer.add_pooling_type(PoolingType.MEAN)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType.CONTROL if t in SPECIAL else TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    def weight(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(vocab, DIM, scale=1.0))
    for layer in range(LAYERS):
        writer.add_tensor(f"blk.{layer}.attn_norm.weight", np.ones(DIM, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{layer}.{name}.weight", weight(DIM, DIM))
        writer.add_tensor(f"blk.{layer}.ffn_norm.weight", np.ones(DIM, dtype=np.float32))
        writer.add_tensor(f"blk.{layer}.ffn_gate.weight", weight(FFN, DIM))
        writer.add_tensor(f"blk.{layer}.ffn_up.weight", weight(FFN, DIM))
        writer.add_tensor(f"blk.{layer}.ffn_down.weight", weight(DIM, FFN))
    writer.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    output = weight(vocab, DIM, scale=1.0)
    # Special tokens get zero logits: random text rarely ends by itself, so max_tokens and stop
    # sequences decide where replies end and tests stay deterministic.
    for special in SPECIAL:
        output[tokens.index(special)] = 0.0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tokenizer(out: Path, tokens: list[str], merges: list[str]) -> None:
    vocab = {t: i for i, t in enumerate(tokens) if t not in SPECIAL}
    added = [
        {"id": tokens.index(t), "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for t in SPECIAL
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [m.split(" ") for m in merges],
        },
    }
    config = {
        "model_max_length": CONTEXT,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "GPT2Tokenizer",
        "chat_template": CHATML,
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False, indent=1, sort_keys=True))
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1, sort_keys=True))


def write_onnx(path: Path, rng: np.random.Generator, vocab: int) -> None:
    table = numpy_helper.from_array((rng.standard_normal((vocab, ONNX_DIM))).astype(np.float32), "embeddings")
    proj = numpy_helper.from_array((rng.standard_normal((ONNX_DIM, ONNX_DIM)) * 0.3).astype(np.float32), "proj")
    bias = numpy_helper.from_array(np.zeros(ONNX_DIM, dtype=np.float32), "proj_bias")
    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis")
    nodes = [
        helper.make_node("Gather", ["embeddings", "input_ids"], ["embedded"], axis=0),
        helper.make_node("MatMul", ["embedded", "proj"], ["projected"]),
        helper.make_node("Add", ["projected", "proj_bias"], ["biased"]),
        helper.make_node("Tanh", ["biased"], ["hidden"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask_3d"]),
        helper.make_node("Mul", ["hidden", "mask_3d"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-embed",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", ONNX_DIM])],
        initializer=[table, proj, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tabagent-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_transformers(out: Path, rng: np.random.Generator, tokens: list[str], classifier: bool) -> None:
    """A Transformers folder: random weights in safetensors, the fixtures' tokenizer, a ChatML template."""
    from safetensors.numpy import save_file  # installed with transformers

    out.mkdir(parents=True, exist_ok=True)
    vocab = len(tokens)
    eos = tokens.index("<|im_end|>")
    pad = tokens.index("<|endoftext|>")
    config = {
        "architectures": ["LlamaForSequenceClassification" if classifier else "LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": DIM,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "max_position_embeddings": CONTEXT,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": pad,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "torch_dtype": "float32",
    }
    if classifier:
        config["id2label"] = {"0": "negative", "1": "positive"}
        config["label2id"] = {"negative": 0, "positive": 1}
    weights = {"model.embed_tokens.weight": rng.standard_normal((vocab, DIM)) * 0.5}
    for i in range(LAYERS):
        prefix = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            weights[f"{prefix}self_attn.{name}.weight"] = rng.standard_normal((DIM, DIM)) * 0.1
        weights[f"{prefix}mlp.gate_proj.weight"] = rng.standard_normal((FFN, DIM)) * 0.1
        weights[f"{prefix}mlp.up_proj.weight"] = rng.standard_normal((FFN, DIM)) * 0.1
        weights[f"{prefix}mlp.down_proj.weight"] = rng.standard_normal((DIM, FFN)) * 0.1
        weights[f"{prefix}input_layernorm.weight"] = np.ones(DIM)
        weights[f"{prefix}post_attention_layernorm.weight"] = np.ones(DIM)
    weights["model.norm.weight"] = np.ones(DIM)
    if classifier:
        weights["score.weight"] = rng.standard_normal((2, DIM)) * 0.5
    else:
        weights["lm_head.weight"] = rng.standard_normal((vocab, DIM)) * 0.5
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()},
              str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": pad, "eos_token_id": eos, "pad_token_id": pad}, indent=1, sort_keys=True))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((out.parent / name).read_bytes())


def write_astronaut(path: Path) -> None:
    """scikit-image's astronaut photo as PNG: one face, at about x 0.35, y 0.16, 0.19 wide."""
    import zlib

    from skimage import data

    rgb = data.astronaut()
    height, width = rgb.shape[:2]
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests" / ".fixtures"
    out.mkdir(parents=True, exist_ok=True)
    tokens, merges = vocabulary()
    write_gguf(out / "tiny-chat.gguf", np.random.default_rng(SEED), tokens, merges, pooling=False)
    write_gguf(out / "tiny-embed.gguf", np.random.default_rng(SEED + 1), tokens, merges, pooling=True)
    write_onnx(out / "tiny-embed.onnx", np.random.default_rng(SEED + 2), len(tokens))
    write_tokenizer(out, tokens, merges)
    write_transformers(out / "tiny-transformers", np.random.default_rng(SEED + 3), tokens, classifier=False)
    write_transformers(out / "tiny-classifier", np.random.default_rng(SEED + 4), tokens, classifier=True)
    write_astronaut(out / "astronaut.png")
    print(f"fixtures written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
