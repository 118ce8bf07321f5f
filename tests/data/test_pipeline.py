"""Tests for ``fgrad.data``'s pipeline and transforms: Dataset, batches, splits, one_hot,
standardization, Beta sampling and mixup."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
from fgrad import data, nn, random


def _ids(batches):
    """The example ids (the "i" field) of a list of batches, in visiting order."""
    return np.concatenate([b["i"] for b in batches]) if batches else np.array([], int)


def _ds(n):
    return data.Dataset({"i": np.arange(n), "x": np.arange(2 * n, dtype=np.float32).reshape(n, 2)})


# --- construction and indexing -------------------------------------------------------------

def test_structures_and_len():
    x, y = np.zeros((5, 3), np.float32), np.arange(5)
    for ds in (data.Dataset(x, y), data.Dataset((x, y)), data.Dataset({"x": x, "y": y}),
               data.Dataset([x, {"y": y}])):
        assert len(ds) == 5
    assert isinstance(data.Dataset(x, y).data, tuple)
    assert list(data.Dataset({"x": x, "y": y}).data) == ["x", "y"]
    assert repr(data.Dataset({"x": x, "y": y})) == \
        "Dataset(len=5, {'x': float32[5, 3], 'y': int64[5]})"


def test_fgrad_and_list_leaves_become_numpy():
    ds = data.Dataset(fnp.ones((4, 2)), fnp.arange(4))
    x, y = ds.data
    assert type(x) is np.ndarray and x.dtype == np.float32 and y.tolist() == [0, 1, 2, 3]


def test_dataset_arrays_are_read_only_and_not_the_callers():
    x = np.arange(4.0)
    ds = data.Dataset(x)
    with pytest.raises(ValueError, match="read-only"):
        ds.data[0] = 5.0
    x[0] = 7.0  # the caller's array stays writable
    assert x.flags.writeable


def test_construction_errors():
    with pytest.raises(ValueError, match=r"Dataset: all arrays must have the same leading "
                                         r"length; got shapes \{'x': \(5, 3\), 'y': \(4,\)\}"):
        data.Dataset({"x": np.zeros((5, 3)), "y": np.zeros(4)})
    with pytest.raises(ValueError, match=r"Dataset: every array needs a leading example axis"):
        data.Dataset(np.zeros(3), np.float32(1.0))
    with pytest.raises(ValueError, match=r"got shapes \(\(2,\), \[\(\), \(\)\]\).*lists are "
                                         r"pytree containers"):
        data.Dataset(np.zeros(2), [0, 1])
    with pytest.raises(ValueError, match="contains no arrays"):
        data.Dataset({})
    with pytest.raises(TypeError, match="got none"):
        data.Dataset()


def test_indexing():
    ds = _ds(6)
    ex = ds[2]
    assert ex["i"] == 2 and ex["x"].tolist() == [4.0, 5.0]
    assert ds[-1]["i"] == 5
    assert ds[1:3]["i"].tolist() == [1, 2]
    assert ds[np.array([4, 0])]["i"].tolist() == [4, 0]
    assert ds[fnp.array([1, 1])]["i"].tolist() == [1, 1]
    assert ds[np.arange(6) % 2 == 0]["i"].tolist() == [0, 2, 4]
    assert [e["i"] for e in ds] == list(range(6))
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(TypeError, match="one index for the example axis"):
        ds[0, 1]


def test_take_map_shuffle():
    ds = _ds(5)
    assert ds.take([3, 1]).data["i"].tolist() == [3, 1]
    with pytest.raises(IndexError, match=r"Dataset.take: indices range over \[0, 5\], out of "
                                         r"bounds for a dataset of length 5"):
        ds.take([0, 5])
    with pytest.raises(TypeError, match="1-d integer array"):
        ds.take([0.5])
    doubled = ds.map(lambda d: {**d, "x": d["x"] * 2})
    assert doubled.data["x"].tolist() == (ds.data["x"] * 2).tolist()
    with pytest.raises(ValueError, match=r"Dataset.map: all arrays must have the same"):
        ds.map(lambda d: {**d, "x": d["x"][:3]})
    key = random.key(3)
    perm = np.asarray(random.permutation(key, 5))
    assert ds.shuffle(key).data["i"].tolist() == perm.tolist()
    assert ds.shuffle(key).data["x"].tolist() == ds.data["x"][perm].tolist()


# --- batches -------------------------------------------------------------------------------

@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**31 - 1),
       drop_last=st.booleans())
def test_every_example_once_per_epoch(n, batch_size, seed, drop_last):
    ds = _ds(n)
    batches = list(ds.batches(batch_size, key=random.key(seed), drop_last=drop_last))
    sizes = [len(b["i"]) for b in batches]
    full, rest = divmod(n, batch_size)
    expected = [batch_size] * full + ([rest] if rest and not drop_last else [])
    assert sizes == expected
    assert len(batches) == ds.num_batches(batch_size, drop_last=drop_last)
    ids = _ids(batches)
    assert len(set(ids.tolist())) == len(ids)  # no example twice
    if not drop_last:
        assert sorted(ids.tolist()) == list(range(n))
    for b in batches:  # rows stay together
        assert (b["x"] == ds.data["x"][b["i"]]).all()


def test_order_is_fgrad_permutation_and_reproducible():
    ds, key = _ds(23), random.key(42)
    ids = _ids(list(ds.batches(5, key=key)))
    assert ids.tolist() == np.asarray(random.permutation(key, 23)).tolist()
    assert _ids(list(ds.batches(5, key=random.key(42)))).tolist() == ids.tolist()
    assert _ids(list(ds.batches(7, key=key))).tolist() == ids.tolist()  # order ignores size
    other = _ids(list(ds.batches(5, key=random.key(43))))
    assert other.tolist() != ids.tolist()
    epochs = [_ids(list(ds.batches(5, key=random.fold_in(key, e)))).tolist() for e in range(4)]
    assert len({tuple(e) for e in epochs}) == 4
    assert _ids(list(ds.batches(5))).tolist() == list(range(23))  # no key: in order


def test_drop_last_drops_the_tail_of_the_shuffled_order():
    ds, key = _ds(10), random.key(0)
    ids = _ids(list(ds.batches(4, key=key, drop_last=True)))
    assert ids.tolist() == np.asarray(random.permutation(key, 10))[:8].tolist()
    assert list(ds.batches(11, drop_last=True)) == []
    assert [len(b["i"]) for b in ds.batches(11)] == [10]


def test_batches_are_fresh_writable_numpy_arrays():
    ds = data.Dataset(np.arange(6.0, dtype=np.float32).reshape(3, 2), np.arange(3))
    for key in (None, random.key(1)):
        xb, yb = next(ds.batches(2, key=key))
        assert type(xb) is np.ndarray and xb.flags.writeable and isinstance(ds.data, tuple)
        xb[...] = -1.0
        assert (ds.data[0] >= 0).all()


def test_batches_go_through_jit():
    ds = data.Dataset({"x": np.arange(12.0, dtype=np.float32).reshape(6, 2),
                       "y": np.arange(6, dtype=np.int32)})
    step = fgrad.jit(lambda b: (b["x"] * 2.0).sum() + b["y"].sum())
    for batch in ds.batches(4, key=random.key(5)):
        expected = 2.0 * batch["x"].sum() + batch["y"].sum()
        np.testing.assert_allclose(np.asarray(step(batch)), expected, rtol=1e-6)


def test_batch_errors_are_raised_at_the_call():
    ds = _ds(4)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=rf"Dataset.batches: batch_size must be a positive "
                                             rf"integer, got {bad}"):
            ds.batches(bad)
    with pytest.raises(TypeError, match="Dataset.batches: batch_size must be an integer, got 2.5"):
        ds.batches(2.5)
    with pytest.raises(ValueError, match="positive integer, got True"):
        ds.batches(True)
    with pytest.raises(ValueError, match="Dataset.num_batches"):
        ds.num_batches(0)
    with pytest.raises(TypeError, match="permutation: expected a PRNG key"):
        ds.batches(2, key=np.zeros(2, np.float32))


# --- splits --------------------------------------------------------------------------------

def test_split():
    ds = _ds(10)
    a, b = ds.split(0.8)
    assert a.data["i"].tolist() == list(range(8)) and b.data["i"].tolist() == [8, 9]
    a, b = ds.split(3, key=random.key(0))
    perm = np.asarray(random.permutation(random.key(0), 10))
    assert a.data["i"].tolist() == perm[:3].tolist() and b.data["i"].tolist() == perm[3:].tolist()
    assert [len(p) for p in ds.split(0.29)] == [3, 7]  # rounded, not truncated
    assert [len(p) for p in ds.split(0)] == [0, 10] and [len(p) for p in ds.split(1.0)] == [10, 0]
    with pytest.raises(ValueError, match=r"Dataset.split: fraction 1.5 out of range \[0, 1\]"):
        ds.split(1.5)
    with pytest.raises(ValueError, match=r"Dataset.split: count 11 out of range \[0, 10\]"):
        ds.split(11)
    with pytest.raises(TypeError, match="count .int. or a fraction"):
        ds.split("half")


def test_train_test_split():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    (x_tr, y_tr), (x_te, y_te) = data.train_test_split(x, y, test_size=0.3)
    assert y_tr.tolist() == list(range(7)) and y_te.tolist() == [7, 8, 9]
    assert (x_te == x[7:]).all()
    key = random.key(9)
    train, test = data.train_test_split({"x": x, "y": y}, test_size=4, key=key)
    again, _ = data.train_test_split({"x": x, "y": y}, test_size=4, key=key)
    assert sorted(train["y"].tolist() + test["y"].tolist()) == list(range(10))
    assert len(test["y"]) == 4 and (train["x"] == x[train["y"]]).all()
    assert train["y"].tolist() == again["y"].tolist()
    other, _ = data.train_test_split({"x": x, "y": y}, test_size=4, key=random.key(10))
    assert other["y"].tolist() != train["y"].tolist()
    with pytest.raises(ValueError, match=r"train_test_split: all arrays must have the same "
                                         r"leading length"):
        data.train_test_split(x, y[:3])


# --- one_hot, standardization, apply_to ----------------------------------------------------

def test_one_hot():
    labels = np.array([[0, 3], [2, 1]])
    out = data.one_hot(labels, 4)
    assert out.shape == (2, 2, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.asarray(nn.one_hot(labels, 4)))
    np.testing.assert_array_equal(data.one_hot(fnp.array([1]), 2, dtype=np.int32), [[0, 1]])
    assert data.one_hot(np.zeros(0, int), 3).shape == (0, 3)
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\), got values "
                                         r"from -1 to 2"):
        data.one_hot(np.array([2, -1]), 3)
    with pytest.raises(ValueError, match=r"from 0 to 3"):
        data.one_hot(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match=r"one_hot: labels must be integers, got float64\[2\]"):
        data.one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="num_classes must be positive"):
        data.one_hot(np.array([0]), 0)


def test_standardizer_per_feature():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 3)) * [1.0, 10.0, 0.0] + [5.0, -2.0, 7.0]).astype(np.float32)
    s = data.fit_standardizer(x)
    assert s.mean.shape == (3,) and s.mean.dtype == np.float32
    z = s(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), [1.0, 1.0, 0.0], atol=1e-5)  # constant: centred only
    np.testing.assert_allclose(s(x[:1]), z[:1], rtol=1e-6)  # same transform on a batch
    np.testing.assert_allclose(s.inverse(z), x, rtol=1e-5, atol=1e-5)
    ds = data.Dataset(x, np.arange(200)).map(data.apply_to(0, s))
    np.testing.assert_allclose(ds.data[0], z)


def test_standardizer_axes():
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    g = data.fit_standardizer(x, axis=None)
    assert g.mean.shape == () and g.mean.dtype == np.float32
    np.testing.assert_allclose(g(x).mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(g(x).std(), 1.0, atol=1e-6)
    pixel = data.fit_standardizer(x, axis=(0, 1))  # per channel of NHWC-like data
    assert pixel.mean.shape == (1, 4)
    np.testing.assert_allclose(pixel(x).mean((0, 1)), 0.0, atol=1e-6)
    assert data.fit_standardizer(x, axis=(-3, -2)).mean.shape == (1, 4)
    with pytest.raises(ValueError, match="must include the example axis 0"):
        data.fit_standardizer(x, axis=1)
    with pytest.raises(ValueError, match="axis 3 out of bounds"):
        data.fit_standardizer(x, axis=3)
    with pytest.raises(ValueError, match=r"fit_standardizer: x must be a non-empty array"):
        data.fit_standardizer(np.zeros((0, 3)))


def test_apply_to():
    double = data.apply_to("x", lambda v: v * 2)
    d = {"x": np.ones(2), "y": np.zeros(2)}
    out = double(d)
    assert out["x"].tolist() == [2.0, 2.0] and out["y"] is d["y"] and d["x"].tolist() == [1, 1]
    assert isinstance(data.apply_to(1, str)([1, 2]), list)
    with pytest.raises(KeyError, match=r"apply_to: no field 'z' in a dict with keys \['x', 'y'\]"):
        data.apply_to("z", abs)(d)
    with pytest.raises(TypeError, match="apply_to: expected a dict, tuple or list"):
        data.apply_to(0, abs)(np.zeros(2))


# --- Beta sampling -------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [(0.2, 0.2), (1.0, 1.0), (2.0, 5.0), (0.5, 3.0)])
def test_sample_beta_matches_the_distribution(a, b):
    samples = data.sample_beta(random.key(7), a, b, shape=(20000,), dtype=np.float64)
    assert samples.dtype == np.float64 and samples.min() >= 0.0 and samples.max() <= 1.0
    # Deterministic key, so this cannot flake; a wrong sampler gives p ~ 0.
    assert scipy.stats.kstest(samples, scipy.stats.beta(a, b).cdf).pvalue > 1e-3
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(samples.mean() - mean) < 4 * np.sqrt(var / samples.size)


def test_sample_beta_shapes_keys_and_errors():
    key = random.key(1)
    s = data.sample_beta(key, np.array([0.5, 2.0]), 1.0, shape=(3, 2))
    assert s.shape == (3, 2) and s.dtype == np.float32
    np.testing.assert_array_equal(s, data.sample_beta(key, np.array([0.5, 2.0]), 1.0, (3, 2)))
    assert not np.array_equal(s, data.sample_beta(random.key(2), np.array([0.5, 2.0]), 1.0,
                                                  (3, 2)))
    assert data.sample_beta(key, np.ones(4), 2.0).shape == (4,)
    assert data.sample_beta(key, 1.0, 1.0).shape == ()
    with pytest.raises(ValueError, match="sample_beta: a and b must be positive"):
        data.sample_beta(key, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"sample_beta: a\[3\] and b\[\] do not broadcast"):
        data.sample_beta(key, np.ones(3), 1.0, shape=(2,))


# --- mixup ---------------------------------------------------------------------------------

def _mixup_parts(x_mix, n):
    """(lam, partner) per example, recovered from mixing x = eye(n)."""
    lam = np.diag(x_mix).astype(np.float64)
    off = x_mix - np.diag(np.diag(x_mix))
    partner = np.where(off.max(1) > 0, off.argmax(1), np.arange(n))
    return lam, partner


def test_mixup_mixes_inputs_and_one_hot_labels_with_one_lam():
    n, key = 8, random.key(11)
    x, y = np.eye(n, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    x_mix, y_mix = data.mixup(key, (x, y), alpha=1.0, num_classes=3)
    assert x_mix.dtype == np.float32 and y_mix.dtype == np.float32 and y_mix.shape == (8, 3)
    lam, partner = _mixup_parts(x_mix, n)
    moved = partner != np.arange(n)
    assert moved.any()
    lam0 = lam[moved][0]
    np.testing.assert_allclose(lam[moved], lam0, rtol=1e-6)  # one lam for the whole batch
    assert sorted(partner.tolist()) == list(range(n))  # the partners form a permutation
    y1 = np.eye(3)[y]
    np.testing.assert_allclose(y_mix, lam0 * y1 + (1 - lam0) * y1[partner], atol=1e-6)
    np.testing.assert_allclose(y_mix.sum(1), 1.0, atol=1e-6)
    again = data.mixup(key, (x, y), alpha=1.0, num_classes=3)
    np.testing.assert_array_equal(again[0], x_mix)


def test_mixup_lam_distribution():
    # lam = x_mix[i, i] for any i whose partner differs; over keys it follows Beta(a, a).
    n, alpha = 6, 0.4
    x, y = np.eye(n, dtype=np.float64), np.eye(n, dtype=np.float32)
    lams = []
    for i in range(400):
        x_mix, y_mix = data.mixup(random.fold_in(random.key(0), i), (x, y), alpha)
        lam, partner = _mixup_parts(x_mix, n)
        moved = partner != np.arange(n)
        lams.append(lam[moved][0])
        np.testing.assert_allclose(y_mix, x_mix, atol=1e-6)  # labels mix exactly like x
    lams = np.array(lams)
    assert scipy.stats.kstest(lams, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert ((lams < 0.1) | (lams > 0.9)).mean() > 0.4  # small alpha: mostly near 0 or 1


def test_mixup_structures_and_dtypes():
    key = random.key(2)
    batch = {"x": np.arange(12, dtype=np.uint8).reshape(4, 3), "y": np.arange(4) % 2,
             "w": np.ones(4)}
    out = data.mixup(key, batch, 0.5, num_classes=2)
    assert set(out) == {"x", "y", "w"} and out["w"] is batch["w"]
    assert out["x"].dtype == np.float32 and out["y"].shape == (4, 2)
    xs, ys = data.mixup(key, [fnp.ones((4, 3)), fnp.array([0, 1, 1, 0])], 0.5, num_classes=2)
    assert type(xs) is np.ndarray and (xs == 1.0).all()
    assert isinstance(data.mixup(key, [np.ones((4, 3)), np.eye(4)], 0.5), list)
    np.testing.assert_allclose(ys.sum(1), 1.0, atol=1e-6)


def test_mixup_errors():
    key, x = random.key(0), np.ones((4, 3))
    with pytest.raises(ValueError, match=r"mixup: x and y must have the same leading \(batch\) "
                                         r"length, got x float64\[4, 3\] and y int64\[3\]"):
        data.mixup(key, (x, np.arange(3)), 0.2, num_classes=3)
    with pytest.raises(ValueError, match="integer labels y int64.4. need num_classes"):
        data.mixup(key, (x, np.arange(4)), 0.2)
    with pytest.raises(ValueError, match="alpha must be positive, got 0"):
        data.mixup(key, (x, np.arange(4)), 0, num_classes=4)
    with pytest.raises(ValueError, match=r"float labels must be one-hot rows"):
        data.mixup(key, (x, np.eye(4)), 0.2, num_classes=3)
    with pytest.raises(KeyError, match=r"missing \['y'\]"):
        data.mixup(key, {"x": x}, 0.2)
    with pytest.raises(TypeError, match="mixup: expected a batch"):
        data.mixup(key, x, 0.2)
