"""TOML recipes -> validated, typed configs built from (nested) dataclasses.

Any task defines its own schema as dataclasses whose fields are scalars, lists
of scalars, optional scalars or nested dataclasses (tables). Constraints sit
in the field metadata through `setting(...)`. `load_recipe` reads TOML,
applies `section.key=value` overrides (values are TOML literals, bare words
are strings), and rejects unknown keys, wrong types and out-of-range values
with a one-line `UserError` naming the key. `write_recipe` writes the resolved
config back as TOML, so a run folder shows exactly what ran.

Example:

    @dataclasses.dataclass
    class Train:
        epochs: int = setting(120, minimum=1)

    @dataclasses.dataclass
    class Recipe:
        train: Train = section(Train)

    config = load_recipe("r.toml", Recipe, overrides=["train.epochs=2"])
"""

import dataclasses
import json
import math
import pathlib
import tomllib
import types
import typing

from kresnet.errors import UserError

# The command that reads the recipes of each task (a recipe without `task = ...` is classification's).
TASK_COMMANDS = {
    "classification": "kresnet train",
    "detection": "kresnet transfer detect",
    "segmentation": "kresnet transfer segment",
}


def setting(default, *, minimum=None, maximum=None, exclusive_minimum=None, choices=None, follows=None, help=""):
    """A recipe field with its default and constraints.

    Args:
        default: the value used when the recipe omits the key (lists are copied per instance).
        minimum: smallest allowed value (inclusive), for numbers and number lists.
        maximum: largest allowed value (inclusive).
        exclusive_minimum: the value must be strictly greater than this.
        choices: allowed values (strings usually).
        follows: str or None. Another key of the same table this one belongs to (stage sizes belong to a
            model name): an override that changes that key and not this one resets this one to its default.
        help: one line describing the key, used in documentation.
    """
    metadata = {
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "choices": tuple(choices) if choices is not None else None,
        "follows": follows,
        "help": help,
    }
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(schema):
    """A nested table of a recipe, defaulting to the schema's own defaults.

    Args:
        schema: the dataclass describing the table.
    """
    return dataclasses.field(default_factory=schema)


def load_recipe(path, schema, overrides=()):
    """Read a TOML recipe into `schema`, applying `section.key=value` overrides.

    Args:
        path: the TOML file.
        schema: the top-level dataclass.
        overrides: strings `dotted.key=value`; values are TOML literals, bare words are strings.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe not found (expected a TOML file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None
    return recipe_from_dict(data, schema, overrides=overrides, source=str(path))


def recipe_from_dict(data, schema, overrides=(), source="recipe"):
    """Validate a plain nested dict (as TOML gives it) into `schema`.

    Args:
        data: nested dict of tables and values.
        schema: the top-level dataclass.
        overrides: strings `dotted.key=value` applied on top of `data`.
        source: the name used in error messages (usually the file path).
    """
    original, data = data, _deep_copy(data)
    overridden = set()
    for override in overrides:
        key, value = parse_override(override)
        _set_dotted(data, key, value, source)
        overridden.add(key)
    _reset_followers(schema, original, data, overridden, prefix="")
    try:
        return _build(schema, data, prefix="")
    except UserError as error:
        _check_task(schema, data, source)
        raise UserError(f"{source}: {error}") from None


def _check_task(schema, data, source):
    """A one-line error naming the command of a recipe written for another task than `schema`'s."""
    task_field = next((f for f in dataclasses.fields(schema) if f.name == "task"), None)
    expected = task_field.default if task_field is not None else "classification"
    found = data.get("task", "classification")
    if found != expected and found in TASK_COMMANDS:
        raise UserError(f"{source}: a {found} recipe; run it with `{TASK_COMMANDS[found]} {source}` "
                        f"(`{TASK_COMMANDS[expected]}` reads {expected} recipes)")


def parse_override(text):
    """Split `a.b=value` into ("a.b", parsed value); the value is a TOML literal or a bare string.

    Args:
        text: the override as typed after `--set`.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise UserError(f"--set {text!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # A bare word such as resnet50d: take it as a string.
    return key, value


def recipe_to_dict(config):
    """The config as a nested dict of plain values (None fields left out, as TOML has no null).

    Args:
        config: a dataclass instance.
    """
    result = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            result[field.name] = recipe_to_dict(value)
        elif value is not None:
            result[field.name] = list(value) if isinstance(value, (list, tuple)) else value
    return result


def dumps_recipe(config):
    """The config as TOML text (scalars first, then one table per section).

    Args:
        config: a dataclass instance or a nested dict.
    """
    data = config if isinstance(config, dict) else recipe_to_dict(config)
    lines = []
    _write_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_recipe(config, path):
    """Write the resolved config as TOML, so the run folder records exactly what ran.

    Args:
        config: a dataclass instance or nested dict.
        path: the destination file.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_recipe(config), encoding="utf-8")
    return path


def _deep_copy(data):
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _set_dotted(data, key, value, source):
    parts = key.split(".")
    table = data
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise UserError(f"{source}: --set {key}: {part} is a value, not a table")
    table[parts[-1]] = value


def _reset_followers(schema, original, data, overridden, prefix):
    """Drop the keys declared `follows=K` whose K an override changed while they were left as the recipe had them."""
    if not isinstance(original, dict) or not isinstance(data, dict):
        return  # _build reports the malformed table
    hints = typing.get_type_hints(schema)
    fields = {field.name: field for field in dataclasses.fields(schema)}
    for name, field in fields.items():
        if dataclasses.is_dataclass(hints[name]):
            _reset_followers(hints[name], original.get(name, {}), data.get(name, {}), overridden, f"{prefix}{name}.")
            continue
        leader = field.metadata.get("follows")
        if not leader or f"{prefix}{leader}" not in overridden or f"{prefix}{name}" in overridden:
            continue
        if original.get(leader, fields[leader].default) != data.get(leader):
            data.pop(name, None)


def _build(schema, data, prefix):
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'recipe'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - set(fields))
    # A schema lists keys it no longer has as REMOVED_KEYS = {key: what replaces it}: old recipes get that, not "unknown".
    removed = [key for key in unknown if key in getattr(schema, "REMOVED_KEYS", {})]
    if removed:
        raise UserError(f"{prefix}{removed[0]}: removed; {schema.REMOVED_KEYS[removed[0]]}")
    if unknown:
        known = ", ".join(sorted(fields))
        raise UserError(f"{prefix}{unknown[0]}: unknown key (known keys here: {known})")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, f"{prefix}{name}.")
        else:
            values[name] = _check_value(f"{prefix}{name}", kind, value, fields[name].metadata)
    return schema(**values)


def _split_optional(kind):
    """(inner type, whether None is allowed) for `T | None` / `Optional[T]`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0], True
    return kind, False


def _check_value(key, kind, value, metadata):
    kind, optional = _split_optional(kind)
    if optional and value is None:
        return None
    if typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise UserError(f"{key}: expected a list of {_describe(item_kind, metadata)}, got {value!r}")
        return [_check_scalar(f"{key}[{i}]", item_kind, v, metadata) for i, v in enumerate(value)]
    return _check_scalar(key, kind, value, metadata)


def _check_scalar(key, kind, value, metadata):
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[kind]
    if ok and kind is float:
        value = float(value)
        ok = math.isfinite(value)
    if ok and kind in (int, float):
        low, high, above = metadata.get("minimum"), metadata.get("maximum"), metadata.get("exclusive_minimum")
        ok = (low is None or value >= low) and (high is None or value <= high) and (above is None or value > above)
    choices = metadata.get("choices")
    if ok and choices is not None:
        ok = value in choices
    if not ok:
        raise UserError(f"{key}: expected {_describe(kind, metadata)}, got {value!r}")
    return value


def _describe(kind, metadata):
    choices = metadata.get("choices")
    if choices is not None and len(choices) > 8:  # model names: a few examples, not the whole list
        return f"one of {len(choices)} names such as " + ", ".join(repr(c) for c in choices[-4:])
    if choices is not None:
        return "one of " + ", ".join(repr(c) for c in choices)
    noun = {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[kind]
    low, high, above = metadata.get("minimum"), metadata.get("maximum"), metadata.get("exclusive_minimum")
    if kind is int and (low == 1 or above == 0) and high is None:
        return "a positive integer"
    if kind is float and above == 0 and high is None:
        return "a positive number"
    if low is not None and high is not None:
        return f"{noun} in [{low}, {high}]"
    if low is not None:
        return f"{noun} >= {low}"
    if above is not None:
        return f"{noun} > {above}"
    if high is not None:
        return f"{noun} <= {high}"
    return noun


def _write_table(data, path, lines):
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if path:
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_literal(value)}")
    for key, value in tables.items():
        _write_table(value, path + [key], lines)


def _key(name):
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _literal(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # repr keeps the round trip exact and always shows '.' or 'e'.
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings.
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def set_option():
    """The `--set section.key=value` option of every command that reads a recipe (one meaning, one type)."""
    import typer

    return typer.Option([], "--set", help="override a recipe key: section.key=value, e.g. train.epochs=10 (repeatable)")
