"""Transformers generation (streamed) and classification on the tiny models the fixtures generate."""

import time

import grpc
import pytest

from conftest import AUTH, error_code, pb

MODEL = "tabagent/tiny-transformers"


def _generate(text, **fields):
    chunks = list(text.Generate(pb.GenerateRequest(model=MODEL, **fields), metadata=AUTH))
    assert chunks[-1].done
    return "".join(c.text for c in chunks[:-1]), chunks[-1], len(chunks) - 1


def test_greedy_generation_streams_what_transformers_generates(text, model_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    messages = [pb.ChatMessage(role="user", content="hello there")]
    streamed, last, pieces = _generate(text, messages=messages, max_tokens=12)
    assert last.finish_reason in ("stop", "length")
    assert 1 <= last.completion_tokens <= 12 and last.prompt_tokens > 3
    assert pieces >= 1

    folder = model_cache / "tabagent--tiny-transformers"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hello there"}], add_generation_prompt=True,
                                           tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    direct = tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert streamed == direct


def test_max_tokens_ends_with_length(text):
    _, last, _ = _generate(text, prompt="the", max_tokens=3)
    # A random tiny model rarely picks its end token within 3: if it did, the reason is "stop".
    assert last.completion_tokens <= 3
    assert last.finish_reason == ("length" if last.completion_tokens == 3 else "stop")


def test_seeded_sampling_repeats(text):
    a, _, _ = _generate(text, prompt="the", max_tokens=8, temperature=1.0, seed=7)
    b, _, _ = _generate(text, prompt="the", max_tokens=8, temperature=1.0, seed=7)
    assert a == b


def test_cancelling_the_stream_stops_generation(text, manage):
    call = text.Generate(pb.GenerateRequest(model=MODEL, prompt="the", max_tokens=2000), metadata=AUTH)
    next(call)
    call.cancel()
    # The service notices between tokens and frees its slot: in_flight (not counting Status) drops to 0.
    deadline = time.monotonic() + 10
    while manage.Status(pb.StatusRequest(), metadata=AUTH).in_flight > 0:
        assert time.monotonic() < deadline, "generation kept running after the client cancelled"
        time.sleep(0.05)


def test_messages_without_a_template_or_prompt_are_refused(text):
    with pytest.raises(grpc.RpcError) as caught:
        _generate(text, max_tokens=3)
    assert error_code(caught.value) == "validation_failed"


def test_classification_scores_sum_to_one(text):
    reply = text.Classify(pb.ClassifyRequest(model="tabagent/tiny-classifier", inputs=["good", "bad things"]),
                          metadata=AUTH)
    assert len(reply.results) == 2
    for result in reply.results:
        assert {label.label for label in result.labels} == {"negative", "positive"}
        assert abs(sum(label.score for label in result.labels) - 1) < 1e-5
