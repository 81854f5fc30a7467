"""The train/eval engine called directly: LR schedule, evaluation metrics, divergence, resumable state."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from paddle_cnns.engine import (Diverged, TrainState, default_decay_epochs, evaluate, fit, make_optimizer,
                                piecewise_decay)
from paddle_cnns.errors import UsageError


def _lrs(scheduler, steps):
    out = []
    for _ in range(steps):
        out.append(scheduler.get_lr())
        scheduler.step()
    return out


def test_piecewise_decay_drops_x0_1_at_each_decay_epoch_stepped_per_iteration():
    # 4 epochs of 3 steps, decays after epochs 2 and 3: 6 steps at 0.1, 3 at 0.01, 3 at 0.001
    lrs = _lrs(piecewise_decay(0.1, epochs=4, steps_per_epoch=3, decay_epochs=(3, 2)), 12)
    assert lrs == pytest.approx([0.1] * 6 + [0.01] * 3 + [0.001] * 3)


def test_piecewise_decay_without_decay_epochs_is_constant():
    assert _lrs(piecewise_decay(0.05, epochs=3, steps_per_epoch=2), 6) == pytest.approx([0.05] * 6)


@pytest.mark.parametrize("bad", [(0,), (4,), (5,), (-1,)])
def test_piecewise_decay_refuses_epochs_outside_the_run(bad):
    with pytest.raises(UsageError, match="strictly between 0 and 4"):
        piecewise_decay(0.1, epochs=4, steps_per_epoch=3, decay_epochs=bad)


@pytest.mark.parametrize("epochs,expected", [(60, (30, 45)), (5, (3, 4)), (3, (2,)), (2, (1,)), (1, ()),
                                             (15, (8, 11)), (25, (13, 19))])
def test_default_decay_epochs_are_half_and_three_quarters_rounded_half_up(epochs, expected):
    assert default_decay_epochs(epochs) == expected


class _Fixed(nn.Layer):
    """Logits given per image id (the input's single value), so evaluation has a known answer."""

    def __init__(self, logits):
        super().__init__()
        self.table = paddle.to_tensor(np.asarray(logits, dtype="float32"))

    def forward(self, x):
        return paddle.gather(self.table, x.reshape([-1]).astype("int64"))


def test_evaluate_gives_top1_top5_balanced_accuracy_per_class_and_confusion():
    # 3 classes; class 0 has 4 images (3 right), class 1 has 1 (wrong, said 2), class 2 has 1 (right)
    labels = [0, 0, 0, 0, 1, 2]
    predicted = [0, 0, 0, 2, 2, 2]
    logits = np.full((6, 3), -5.0)
    logits[np.arange(6), predicted] = 5.0
    ids = paddle.to_tensor(np.arange(6, dtype="float32").reshape(6, 1))
    y = paddle.to_tensor(np.asarray(labels, dtype="int64").reshape(6, 1))
    loader = [(ids[:4], y[:4]), (ids[4:], y[4:])]
    out = evaluate(_Fixed(logits), loader, num_classes=3)
    assert out["n"] == 6
    assert out["acc"] == pytest.approx(4 / 6)
    assert out["top5"] == pytest.approx(1.0)  # top-3 here: every class is within it
    assert out["per_class_acc"] == pytest.approx([0.75, 0.0, 1.0])
    assert out["balanced_acc"] == pytest.approx((0.75 + 0.0 + 1.0) / 3)
    assert out["confusion"] == [[3, 0, 1], [0, 0, 1], [0, 0, 1]]
    # cross-entropy -log softmax[label] of a +5/-5/-5 row: log(1 + 2e^-10) when the +5 is the label,
    # 10 + log(1 + 2e^-10) when a -5 is
    right = np.log1p(2 * np.exp(-10.0))
    wrong = 10 + right
    assert out["loss"] == pytest.approx((4 * right + 2 * wrong) / 6, rel=1e-5)


def test_evaluate_leaves_classes_without_images_out_of_balanced_accuracy():
    logits = np.array([[5.0, -5.0, -5.0]])
    ids = paddle.to_tensor(np.zeros((1, 1), dtype="float32"))
    out = evaluate(_Fixed(logits), [(ids, paddle.to_tensor([[0]]))], num_classes=3)
    assert np.isnan(out["per_class_acc"][1]) and out["balanced_acc"] == 1.0


def _tiny(seed=0):
    paddle.seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def _batches(poison_at=None):
    rng = np.random.RandomState(0)
    x = rng.randn(4, 2, 2, 1).astype("float32")
    y = np.array([[0], [1], [2], [0]], dtype="int64")
    batches = [(paddle.to_tensor(x[i:i + 2]), paddle.to_tensor(y[i:i + 2])) for i in (0, 2)]
    if poison_at is not None:
        batches[poison_at] = (batches[poison_at][0] * float("nan"), batches[poison_at][1])
    return batches


def _fit(model, epochs, poison=None, state=None, stop=lambda: False):
    sched = piecewise_decay(0.1, epochs, 2)
    opt = make_optimizer("momentum", model.parameters(), sched)
    train = (lambda e: _batches(poison[1] if poison and e == poison[0] else None))
    return list(fit(model, opt, sched, train, _batches(), epochs, 3, state, seed=0, stop_requested=stop))


def test_a_non_finite_loss_raises_diverged_at_that_step_with_earlier_epochs_kept():
    state = TrainState()
    with pytest.raises(Diverged) as e:
        _fit(_tiny(), epochs=3, poison=(2, 1), state=state)
    assert (e.value.epoch, e.value.step) == (2, 2)
    assert "non-finite loss at epoch 2 step 2" == str(e.value)
    assert state.epoch == 1 and len(state.history) == 1 and state.step_in_epoch == 1


def test_fit_yields_one_row_per_epoch_and_tracks_the_best_epoch():
    state = TrainState()
    rows = _fit(_tiny(), epochs=3, state=state)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) >= {"train_loss", "train_acc", "eval_loss", "eval_acc", "eval_top5", "lr"}
    best = max(range(3), key=lambda i: (rows[i]["eval_acc"], -i))
    assert state.best_epoch == best + 1 and state.best_eval_acc == rows[best]["eval_acc"]
    assert state.global_step == 6 and state.history == rows
