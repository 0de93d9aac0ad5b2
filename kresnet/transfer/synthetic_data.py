"""The `data.synthetic_*` keys of a transfer recipe (`data.source = "synthetic"`), declared once for every task.

Detection and segmentation generate their scenes with the same generator; each task
adds the count of its own held-out split (`synthetic_test_images`,
`synthetic_val_images`) and may give the shared keys its own defaults.
"""

import dataclasses

from kresnet.recipe import setting


@dataclasses.dataclass
class SyntheticScenes:
    """The generated scenes every transfer task has: how many classes, how large, how many, which."""

    synthetic_classes: int = setting(4, minimum=1, help="object classes of the generated scenes")
    synthetic_image_size: int = setting(64, minimum=16, help="side of the square scenes (px)")
    synthetic_train_images: int = setting(200, minimum=1)
    synthetic_seed: int = setting(0, minimum=0, help="generator seed of the synthetic scenes (train.seed leaves them "
                                                     "alone)")


def with_synthetic_scenes(table, **task_settings):
    """A task's `[data]` table: `table`'s keys, then the `SyntheticScenes` keys (the resolved recipe lists them so).

    Args:
        table: the task's own `[data]` dataclass; the result takes its name and documentation.
        **task_settings: {shared key: the task's default, or a `setting(...)` with the task's own limits}.
    """
    inherited = {field.name: field for field in dataclasses.fields(SyntheticScenes)}
    unknown = sorted(set(task_settings) - set(inherited))
    if unknown:
        raise TypeError(f"with_synthetic_scenes: SyntheticScenes has no keys {unknown}")
    fields = [(key, inherited[key].type,
               value if isinstance(value, dataclasses.Field) else setting(value, **inherited[key].metadata))
              for key, value in task_settings.items()]
    # Fields gather from the last base to the first: the task's keys come before the shared ones.
    schema = dataclasses.make_dataclass(table.__name__, fields, bases=(SyntheticScenes, table))
    schema.__module__, schema.__doc__ = table.__module__, table.__doc__
    return schema
