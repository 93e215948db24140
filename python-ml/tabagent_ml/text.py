"""Transformers: embeddings (sentence-transformers), streaming generation and classification.

Each entry point takes a `cancelled` callable (true once the client went away or its deadline
passed) and checks it between batches or tokens, so an aborted HTTP request stops the work here.
"""

import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import MLError

EMBED_BATCH = 32
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000


def _threads() -> None:
    import torch

    want = int(__import__("os").environ.get("TABAGENT_ML_THREADS", "0") or 0)
    if want > 0 and torch.get_num_threads() != want:
        torch.set_num_threads(want)


def load_embedding(path: Path):
    _threads()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    return model, int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                      else model.get_sentence_embedding_dimension())


def check_inputs(inputs) -> list[str]:
    texts = list(inputs)
    if not texts:
        raise MLError("validation_failed", "inputs must hold at least one text")
    if len(texts) > MAX_INPUTS:
        raise MLError("payload_too_large", f"at most {MAX_INPUTS} inputs per call")
    for text in texts:
        if len(text) > MAX_INPUT_CHARS:
            raise MLError("payload_too_large", f"an input is longer than {MAX_INPUT_CHARS} characters")
    return texts


def embed(model, inputs: list[str], normalize: bool, cancelled: Callable[[], bool]) -> tuple[np.ndarray, int]:
    """Row-major float32 vectors, and the prompt tokens the model saw.

    What SentenceTransformer.encode does (longest first, batches of 32, tokenize, forward, optional L2
    normalisation), written out so the tokens are counted from the same tokenization instead of a
    second pass, and so a cancelled call stops between batches.
    """
    import torch

    order = np.argsort([-len(text) for text in inputs], kind="stable")
    vectors: np.ndarray | None = None
    tokens = 0
    with torch.inference_mode():
        for start in range(0, len(inputs), EMBED_BATCH):
            if cancelled():
                raise MLError("cancelled", "The client cancelled the call")
            rows = order[start:start + EMBED_BATCH]
            features = model.tokenize([inputs[i] for i in rows])
            tokens += int(features["attention_mask"].sum())
            out = model.forward(features)["sentence_embedding"]
            if normalize:
                out = torch.nn.functional.normalize(out, p=2, dim=1)
            if vectors is None:
                vectors = np.empty((len(inputs), out.shape[1]), dtype="<f4")
            vectors[rows] = out.float().numpy()
    return vectors, tokens


# ---- generation ---------------------------------------------------------------------------------

class Generator:
    """A causal LM with its tokenizer; one generation at a time per model."""

    def __init__(self, path: Path) -> None:
        _threads()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        self.model.eval()
        self.lock = threading.Lock()

    def prompt_ids(self, prompt: str, messages) -> list[int]:
        if messages:
            if not getattr(self.tokenizer, "chat_template", None):
                raise MLError("bad_request", "This model has no chat template: send a prompt instead of messages")
            rendered = self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=False)
            return self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        if not prompt:
            raise MLError("validation_failed", "send a prompt or messages")
        return self.tokenizer(prompt)["input_ids"]

    def generate(self, request, cancelled: Callable[[], bool]) -> Iterator[tuple[str, dict | None]]:
        """Yields (text piece, None) while decoding, then ("", usage) last."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        ids = self.prompt_ids(request.prompt, request.messages)
        context = getattr(self.model.config, "max_position_embeddings", 2048)
        max_new = request.max_tokens or 256
        if len(ids) >= context:
            raise MLError("context_overflow", f"The prompt has {len(ids)} tokens; the model's context is {context}")
        max_new = min(max_new, context - len(ids))
        stop_now = threading.Event()

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return stop_now.is_set() or cancelled()

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new, streamer=streamer, stopping_criteria=StoppingCriteriaList([Stop()]),
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id,
        )
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=request.top_p or 1.0)
        else:
            kwargs.update(do_sample=False)
        result: dict = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    if request.HasField("seed"):
                        torch.manual_seed(request.seed)
                    result["output"] = self.model.generate(**kwargs)
            except Exception as error:  # surfaced to the caller below
                result["error"] = error
                streamer.end()

        with self.lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            text = ""
            finish = None
            stops = list(request.stop)
            for piece in streamer:
                if cancelled():
                    stop_now.set()
                    continue
                if not piece or finish:
                    continue
                text += piece
                hit = min((text.find(s) for s in stops if s and s in text), default=-1)
                if hit >= 0:
                    emitted = len(text) - len(piece)
                    if hit > emitted:
                        yield text[emitted:hit], None
                    finish = "stop"
                    stop_now.set()
                    continue
                yield piece, None
            worker.join()
        if "error" in result:
            raise MLError("internal", f"Generation failed: {result['error']}")
        if cancelled():
            raise MLError("cancelled", "The client cancelled the call")
        output = result["output"][0]
        completion = int(output.shape[0]) - len(ids)
        if finish is None:
            eos = self.model.generation_config.eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos])
            finish = "stop" if completion < max_new or int(output[-1]) in eos else "length"
        yield "", {"finish_reason": finish, "prompt_tokens": len(ids), "completion_tokens": completion}


# ---- classification -----------------------------------------------------------------------------

class Classifier:
    def __init__(self, path: Path) -> None:
        _threads()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path))
        self.model.eval()
        self.labels = self.model.config.id2label

    def classify(self, inputs: list[str], top_k: int) -> list[list[tuple[str, float]]]:
        import torch

        with torch.inference_mode():
            batch = self.tokenizer(inputs, padding=True, truncation=True, return_tensors="pt")
            probs = torch.softmax(self.model(**batch).logits, dim=-1)
        k = min(top_k or probs.shape[-1], probs.shape[-1])
        out = []
        for row in probs:
            scores, idx = torch.topk(row, k)
            out.append([(self.labels.get(int(i), str(int(i))), float(s)) for s, i in zip(scores, idx)])
        return out
