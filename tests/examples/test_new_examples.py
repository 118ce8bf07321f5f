"""``examples/char_rnn.py`` and ``examples/mixed_precision.py``: they run, they learn, and
the machinery they teach does what they say.

The end-to-end tests run each script in ``--quick`` mode in a fresh process
(``run_example`` from ``test_examples.py``). The others load the char-rnn script
in this process with ``runpy`` and check its pieces against independent
oracles: its stateful LSTM against ``nn_stax.LSTM``, and one-character-at-a-time
generation (state carried between jitted calls) against re-running the whole
sequence.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_examples import EXAMPLES, run_example

import fgrad
import fgrad.numpy as fnp
from fgrad import nn_stax as stax
from fgrad import random


def _pydoc_text() -> str:
    from pydoc_data.topics import topics
    return "\n".join(topics[name] for name in sorted(topics))


# --- char_rnn.py -----------------------------------------------------------------------------


def test_char_rnn_quick(tmp_path: Path) -> None:
    results, stdout = run_example("char_rnn.py", tmp_path, "--sample-chars", "60")
    vocab = results["vocab"]
    assert vocab == "".join(sorted(set(_pydoc_text())))  # every character of the corpus
    # Learning: the loss falls, and validation beats the unigram model by a margin
    # (seen: 3.9 -> 3.5 bits per character against a baseline of 4.67).
    assert results["train_bpc"][-1] < results["train_bpc"][0] - 0.3, results["train_bpc"]
    assert results["val_bpc"][-1] < results["val_bpc"][0], results["val_bpc"]
    assert results["val_bpc"][-1] < results["unigram_bpc"] - 0.5
    assert 4.0 < results["unigram_bpc"] < math.log2(len(vocab))
    samples = results["samples"] + list(results["final_samples"].values())
    assert len(samples) == 3  # one during training (step 150), then T = 0.5 and T = 1.0
    for sample in samples:
        assert isinstance(sample, str) and sample.startswith("The ")
        assert len(sample) == len("The ") + 60
        assert set(sample) <= set(vocab)
    assert results["samples"][0] in stdout
    assert f"{results['val_bpc'][-1]:.2f} bits per character" in stdout


@pytest.fixture(scope="module")
def char_rnn() -> dict[str, Any]:
    """The char-rnn script's functions, loaded in this process."""
    return runpy.run_path(str(EXAMPLES / "char_rnn.py"), run_name="char_rnn_example")


def test_stateful_lstm_is_nn_stax_lstm_and_continues_a_sequence(char_rnn: dict) -> None:
    batch, time, features, hidden = 3, 7, 5, 4
    init_fun, apply_fun = char_rnn["StatefulLSTM"](hidden)
    _, params, zero = init_fun(random.key(0), (batch, time, features))
    x = random.normal(random.key(1), (batch, time, features))
    hs, (h, c) = apply_fun(params, zero, x)
    _, stax_apply = stax.LSTM(hidden)  # the oracle: same params, same gates
    np.testing.assert_allclose(hs, stax_apply(params, x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, hs[:, -1], rtol=0, atol=0)
    # Two calls with the state carried over equal one call on the whole sequence.
    first, state = apply_fun(params, zero, x[:, :3])
    second, final = apply_fun(params, state, x[:, 3:])
    np.testing.assert_allclose(fnp.concatenate([first, second], axis=1), hs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(final[1], c, rtol=1e-6, atol=1e-6)


def test_generation_carries_the_state_and_is_reproducible(char_rnn: dict) -> None:
    vocab = char_rnn["Vocabulary"]("abcdefgh ")
    init_fun, apply_fun = char_rnn["make_model"](len(vocab), 4, 8)
    _, params, state = init_fun(random.key(0), (2, 5))
    params = fgrad.tree_util.tree_map(lambda p: 3 * p, params)  # sharper, less uniform logits
    sample_step = char_rnn["make_sample_step"](apply_fun, "cpu")
    one = char_rnn["zero_state"](state, 1)

    def generate(key: Any, temperature: float) -> str:
        return char_rnn["generate"](sample_step, params, one, vocab, "ab", 12, key, temperature)

    text = generate(random.key(1), 1.0)
    assert len(text) == 14 and text.startswith("ab") and set(text) <= set(vocab.chars)
    assert generate(random.key(1), 1.0) == text  # same key, same sample
    assert len({generate(random.key(k), 1.0) for k in range(2, 6)}) > 1
    # Near temperature 0 sampling is greedy decoding; the oracle re-runs the whole
    # sequence from the zero state to pick each next character.
    greedy = generate(random.key(1), 1e-6)
    ids = list(vocab.encode("ab"))
    while len(ids) < 14:
        logits, _ = apply_fun(params, one, fnp.asarray([ids], dtype=fnp.int32))
        ids.append(int(fnp.argmax(logits[0, -1])))
    assert greedy == vocab.decode(ids)


def test_vocabulary_round_trip_and_unknown_characters(char_rnn: dict) -> None:
    vocab = char_rnn["Vocabulary"]("hello world")
    assert vocab.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert vocab.decode(vocab.encode("hold")) == "hold"
    with pytest.raises(ValueError, match=r"\['z'\] are not in the vocabulary"):
        vocab.encode("hozel")


# --- mixed_precision.py ------------------------------------------------------------------------


def _replay_loss_scale(scales: list[float], final: float, skipped_at: list[int],
                       growth_interval: int) -> None:
    """Check the scale history step by step against the rule of dynamic loss scaling."""
    good = 0
    for step, (scale, after) in enumerate(zip(scales, scales[1:] + [final], strict=True), start=1):
        if step in skipped_at:  # overflow: halve (not below 1), restart the count
            expected, good = max(scale / 2, 1.0), 0
        elif good + 1 >= growth_interval:  # enough finite steps in a row: double
            expected, good = scale * 2, 0
        else:
            expected, good = scale, good + 1
        assert after == expected, (step, scale, after)


def test_mixed_precision_quick(tmp_path: Path) -> None:
    # An initial scale of 2^24 overflows float16 at once: the logits' cotangent alone is
    # 2^24 * (p - y) / batch, beyond float16's 65504, so the first update must be skipped.
    results, stdout = run_example("mixed_precision.py", tmp_path, "--init-scale",
                                  str(2.0 ** 24))
    f32, bf16, f16, f16_raw = (results[name] for name in
                               ("float32", "bfloat16", "float16", "float16, no scaling"))
    for name, run in results.items():
        assert run["train_loss"][-1] < 0.2 * run["train_loss"][0], (name, run["train_loss"])
    assert f32["acc"] > 90.0  # seen: 98%
    for run in (bf16, f16, f16_raw):
        assert abs(run["acc"] - f32["acc"]) <= 3.0, (run["acc"], f32["acc"])
    # The scaler reacted: the first step overflowed and was skipped, the scale came down
    # and later went up again, and every change followed the rule.
    assert f16["skipped_at"][0] == 1 and f16["scale"][:2] == [2.0 ** 24, 2.0 ** 23]
    assert max(np.diff(np.log2(f16["scale"]))) == 1.0  # doubled at least once
    _replay_loss_scale(f16["scale"], f16["final_scale"], f16["skipped_at"], growth_interval=20)
    # The runs without scaling never change their scale of 1 nor skip.
    for run in (f32, bf16, f16_raw):
        assert set(run["scale"]) == {1.0} and run["skipped_at"] == []
    # What scaling is for: unscaled float16 loses gradient entries to underflow
    # (seen: 0.5% at the end), scaled float16 (almost) none, float32 none at all.
    assert f16_raw["lost"][-1] > 0.1
    assert f16["lost"][-1] < f16_raw["lost"][-1] / 10
    assert f32["lost"] == [0.0] * len(f32["lost"])
    row = next(line for line in stdout.splitlines() if line.startswith("float16 "))
    assert f"{f16['acc']:.1f}%" in row and f"{len(f16['skipped_at'])}" in row
    assert "step 1: 2^24 -> 2^23 (overflow: update skipped)" in stdout
