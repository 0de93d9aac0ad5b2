"""One tiny `kresnet train` run as a user starts it: 4 synthetic classes, 32 px, 2 steps per epoch, a
checkpoint every step (so the previous checkpoint is kept beside the newest)."""

TINY = [
    "data.synthetic_classes=4", "data.synthetic_per_class=4", "data.synthetic_val_per_class=2",
    "data.synthetic_image_size=32", "data.image_size=32", "data.eval_resize=32", "model.num_classes=4",
    "model.stage_depths=[1,1,1,1]", "model.stage_widths=[8,8,16,16]", "train.batch_size=8",
    "train.checkpoint_every_steps=1", "schedule.warmup_epochs=0.5",
]


def train_command(out, *more):
    """The arguments of `kresnet train demo` at the tiny size into `out`, with `more` `--set` values."""
    return ["train", "demo", *[arg for item in [*TINY, *more] for arg in ("--set", item)], "--out", str(out)]
