"""companion.glove against the authors' glove.c (third_party/glove), built here with gcc."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.glove import GloveParams, train_batch, weighting
from companion.glove_reference import build_glove_c, run_glove_c


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return build_glove_c(tmp_path_factory.mktemp("glove-c"))


def pairs(n_words: int = 40, n_pairs: int = 600, seed: int = 0):
    """Distinct random (i, j) pairs with counts from 0.1 to 300, in a random order."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(n_words * n_words, size=n_pairs, replace=False)
    return flat // n_words, flat % n_words, rng.uniform(0.1, 300.0, size=n_pairs)


def float64_init(n_words: int, dim: int) -> GloveParams:
    p = GloveParams.init(n_words, dim, seed=3)
    return GloveParams(*(t.double() for t in (p.w, p.w_ctx, p.accum_w, p.accum_w_ctx)))


def one_pair_at_a_time(init, i, j, x, epochs, bias_lr):
    """companion's AdaGrad, one pair per step, in the given order (as glove.c with 1 thread)."""
    p = GloveParams(*(t.clone() for t in (init.w, init.w_ctx, init.accum_w, init.accum_w_ctx)))
    i, j, x = torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(x)
    losses = []
    for _ in range(epochs):
        total = sum(
            train_batch(p, i[n : n + 1], j[n : n + 1], x[n : n + 1].log(),
                        weighting(x[n : n + 1]), 0.05, bias_lr)
            for n in range(len(i))
        )  # fmt: skip
        losses.append(total / len(i))
    return p, losses


def test_companion_with_bias_rate_one_is_glove_c(binary) -> None:
    """Every parameter, accumulator and epoch cost equal to 1e-10 after 3 epochs."""
    i, j, x = pairs()
    init = float64_init(40, 6)
    ref = run_glove_c(binary, i, j, x, init, epochs=3)
    ours, losses = one_pair_at_a_time(init, i, j, x, 3, bias_lr=1.0)
    for name in ("w", "w_ctx", "accum_w", "accum_w_ctx"):
        assert (getattr(ours, name) - getattr(ref.params, name)).abs().max() < 1e-10, name
    assert losses == pytest.approx(ref.losses, abs=1e-6)  # glove.c prints 6 decimals
    assert ref.losses[-1] < ref.losses[0]


def test_default_bias_rate_is_the_papers_not_glove_c(binary) -> None:
    """With the biases stepped at lr (GloVe 1.2), the vectors part from today's glove.c."""
    i, j, x = pairs(seed=1)
    init = float64_init(40, 6)
    ref = run_glove_c(binary, i, j, x, init, epochs=1)
    ours, _ = one_pair_at_a_time(init, i, j, x, 1, bias_lr=None)
    assert (ours.w[:, -1] - ref.params.w[:, -1]).abs().max() > 1e-3  # the biases
    bias_steps = ours.accum_w[:, -1] - init.accum_w[:, -1]
    ref_steps = ref.params.accum_w[:, -1] - init.accum_w[:, -1]
    used = ref_steps > 0
    ratio = (bias_steps[used] / ref_steps[used]).median()
    assert 0.0 < ratio < 0.05**2 * 10  # G collects (lr g)^2 instead of g^2


def test_run_glove_c_refuses_bad_input_and_reports_its_errors(binary, tmp_path) -> None:
    init = float64_init(5, 3)
    with pytest.raises(ValueError, match="equally long"):
        run_glove_c(binary, np.array([0, 1]), np.array([1]), np.array([1.0, 2.0]), init, epochs=1)
    fake = tmp_path / "glove"
    fake.write_text("#!/bin/sh\necho 'cannot open file' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match="exited with 3:\ncannot open file"):
        run_glove_c(fake, np.array([0]), np.array([1]), np.array([2.0]), init, epochs=1)


def test_build_needs_a_compiler(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="needs a C compiler: 'no-such-cc' was not found"):
        build_glove_c(tmp_path, compiler="no-such-cc")
    assert not any(tmp_path.iterdir())
