"""`model.data_format = "channels_first"`: the run trains in NCHW end to end and its weights serve a channels_last model."""

import keras
import numpy as np
import pytest

import kresnet
from kresnet.errors import UserError
from kresnet.classification import build, commands
from kresnet.tricks import low_precision as precision

TINY = [
    "model.stage_depths=[1,1,1,1]", "model.stage_widths=[8,8,16,16]", "model.num_classes=4",
    "data.synthetic_classes=4", "data.synthetic_per_class=8", "data.synthetic_val_per_class=2",
    "data.synthetic_image_size=32", "data.image_size=32", "data.eval_resize=32",
    "train.epochs=2", "train.batch_size=8", "schedule.warmup_epochs=1", "tricks.mixup_off_epochs=1",
]


@pytest.mark.skipif(
    keras.config.backend() == "tensorflow", reason="TensorFlow's CPU convolutions are NHWC only (the error is tested below)"
)
def test_a_channels_first_run_trains_and_its_weights_give_the_same_logits_in_channels_last(tmp_path, monkeypatch):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    built = []
    original = build.build_classifier
    monkeypatch.setattr(build, "build_classifier", lambda *a, **k: built.append(original(*a, **k)) or built[-1])
    run = tmp_path / "run"
    commands.train("demo", [*TINY, "model.data_format='channels_first'"], run)
    assert [tuple(model.input_shape) for model in built] == [(None, 3, None, None)]  # NCHW, fed NCHW batches

    model_kwargs = dict(num_classes=4, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    first = kresnet.create_model("resnet18d", data_format="channels_first", input_shape=(3, 32, 32), **model_kwargs)
    last = kresnet.create_model("resnet18d", input_shape=(32, 32, 3), **model_kwargs)
    first.load_weights(run / "model.weights.h5")
    last.load_weights(run / "model.weights.h5")
    images = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    from_first = keras.ops.convert_to_numpy(first(np.ascontiguousarray(images.transpose(0, 3, 1, 2))))
    from_last = keras.ops.convert_to_numpy(last(images))
    np.testing.assert_allclose(from_first, from_last, atol=1e-4)
    assert (run / "metrics.json").exists()


def test_channels_first_on_tensorflow_without_a_gpu_is_a_one_line_error_before_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "tensorflow")
    monkeypatch.setattr(precision, "accelerator", lambda: ("cpu", False))
    with pytest.raises(UserError, match=r"model.data_format='channels_first'.*channels_last") as error:
        commands.train("demo", [*TINY, "model.data_format='channels_first'"], tmp_path / "run")
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    assert build.image_shape("channels_last", 32) == (32, 32, 3)
