"""The train/evaluate/ablate commands: one-line user errors, recipe resolution, ablation table."""


import pytest
import typer
from typer.testing import CliRunner

from kresnet.errors import UserError
from kresnet.classification import ablation, commands


def _app():
    app = typer.Typer()
    app.command("train")(commands.train)
    app.command("evaluate")(commands.evaluate)
    app.command("ablate")(commands.ablate)
    return app


def test_imagenet_recipe_without_imagenet_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError) as info:
        commands.train("r50d", ["data.root=" + str(tmp_path / "nowhere")], tmp_path / "run")
    message = str(info.value)
    assert "\n" not in message
    assert "ImageNet not found" in message and "nowhere" in message and "recipes/demo.toml" in message
    assert not (tmp_path / "run").exists()


def test_bad_override_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"train\.epochs: expected a positive integer, got -3$"):
        commands.train("demo", ["train.epochs=-3"], tmp_path)
    with pytest.raises(UserError, match="recipe not found"):
        commands.resolve_recipe("no_such_recipe")


def test_evaluate_needs_a_model_for_bare_weights(tmp_path):
    weights = tmp_path / "x.weights.h5"
    weights.write_bytes(b"")
    with pytest.raises(UserError, match="--model"):
        commands.evaluate(weights, None, tmp_path, None, None, None, 8, None, None, None, None)
    with pytest.raises(UserError, match="not a run folder"):
        commands.evaluate(tmp_path, None, None, None, None, None, 8, None, None, None, None)


def test_ablation_rows_are_cumulative():
    result = CliRunner().invoke(_app(), ["ablate", "--list"])
    assert result.exit_code == 0 and "+cosine" in result.output
    assert "+distill-w-mixup   [on +mixup] " in result.output and "+ the --teacher run's model and weights" in result.output
    assert set(ablation.ROWS["resnet"]) < set(ablation.ROWS["+mixup"])
    assert "schedule.kind='cosine'" in ablation.ROWS["+label-smoothing"]
    assert ablation.step_epochs_for(16) == [4, 8, 12]
    with pytest.raises(UserError, match="unknown row"):
        ablation.parse_rows("resnet,+nope")


def test_evaluate_a_run_folder_with_the_eval_transform(tmp_path):
    import numpy as np
    from PIL import Image

    from kresnet.data.pipeline import build_dataset
    from kresnet.recipe import write_recipe
    from kresnet.classification.build import build_classifier
    from kresnet.classification.evaluation import evaluate_weights
    from tests.training_helpers import tiny_recipe

    rng = np.random.default_rng(0)
    for k in range(4):
        folder = tmp_path / "data" / "val" / f"class{k}"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    config = tiny_recipe(data={"root": str(tmp_path / "data")})
    run = tmp_path / "run"
    write_recipe(config, run / "recipe.toml")
    model = build_classifier(config.model)
    model.save_weights(run / "model.weights.h5")
    metrics = evaluate_weights(run, batch_size=8)
    dataset, _ = build_dataset(tmp_path / "data" / "val", training=False, batch_size=8, image_size=32, resize_size=32, num_classes=4)
    images, labels = next(iter(dataset))
    predicted = np.argmax(model.predict(images.numpy(), verbose=0), -1)
    assert metrics["images"] == 8
    assert metrics["top1"] == pytest.approx(100 * np.mean(predicted == np.argmax(labels.numpy(), -1)))
    assert metrics["top5"] == pytest.approx(100.0)  # 4 classes: top-4 always hits


def test_evaluate_imported_weights_from_the_command_line(testdata, tmp_path, run_cli, capsys):
    import json
    import shutil

    import numpy as np

    import kresnet
    from kresnet.data.pipeline import build_dataset

    # The 10 ImageNet-style samples as a 10-class validation folder (class k = the k-th sorted synset).
    for k, synset in enumerate(sorted(p.name for p in (testdata / "imagenet" / "samples").iterdir())):
        (tmp_path / "val" / f"class{k}").mkdir(parents=True)
        for image in (testdata / "imagenet" / "samples" / synset).iterdir():
            shutil.copy(image, tmp_path / "val" / f"class{k}" / image.name)
    imported = tmp_path / "imported.weights.h5"
    reference = testdata / "reference" / "bottleneck_d_1111.safetensors"
    assert run_cli(["import-weights", reference, "--model", "resnet50d", "--depths", "1,1,1,1", "--out", imported]) == 0
    evaluate = ["evaluate", imported, "--model", "resnet50d", "--depths", "1,1,1,1", "--widths", "8,16,24,32",
                "--num-classes", "10", "--data", tmp_path, "--image-size", "64", "--resize", "73", "--batch-size", "4"]
    assert run_cli([*evaluate, "--json", tmp_path / "metrics.json"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())

    model = kresnet.create_model("resnet50d", num_classes=10, stage_depths=[1, 1, 1, 1], stage_widths=[8, 16, 24, 32])
    model.load_weights(imported)
    dataset, _ = build_dataset(tmp_path / "val", training=False, batch_size=10, image_size=64, resize_size=73, num_classes=10)
    images, labels = next(iter(dataset))
    logits = model.predict(images.numpy(), verbose=0)
    truth = np.argmax(labels.numpy(), -1)
    top5 = np.argsort(-logits, -1)[:, :5]
    assert metrics["images"] == 10 and metrics["image_size"] == 64 and metrics["resize"] == 73
    assert metrics["top1"] == pytest.approx(100 * np.mean(np.argmax(logits, -1) == truth))
    assert metrics["top5"] == pytest.approx(100 * np.mean([t in row for t, row in zip(truth, top5)]))
    # The timm file itself, through --weights (widths and classes read from it), scores the same.
    direct = ["evaluate", "--weights", reference, "--model", "resnet50d", "--depths", "1,1,1,1", "--data", tmp_path,
              "--image-size", "64", "--resize", "73", "--batch-size", "4", "--json", tmp_path / "direct.json"]
    assert run_cli(direct) == 0
    assert json.loads((tmp_path / "direct.json").read_text())["top1"] == pytest.approx(metrics["top1"])
    capsys.readouterr()
    assert run_cli(["evaluate", reference, "--model", "resnet50d", "--data", tmp_path]) == 2
    assert f"is read by --weights {reference}" in capsys.readouterr().err
    assert run_cli(["evaluate", imported, "--model", "resnet50d", "--depths", "1,1", "--data", tmp_path]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "--depths" in error and "\n" not in error
    assert run_cli(["evaluate", imported, "--model", "resnet50d", "--widths", "8,16", "--data", tmp_path]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "--widths expects 4 positive integers" in error and "\n" not in error
