"""docker-compose.yml, the Dockerfile and compose override files as data, for the static tests.

No container engine runs here, so what docker compose would do is done on the parsed files:
interpolation with the shipped defaults, the compose-spec merge of an override file (including the
`!reset` and `!override` tags), validation against compose-spec's own JSON schema (vendored in
tests/data/compose-spec/ with its source and license), and the collector's command line parsed by
`monitor run`'s own argument parser.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_SCHEMA = REPO / "tests" / "data" / "compose-spec" / "compose-spec.json"


class Reset:
    """`!reset VALUE` of an override file: the attribute goes back to its default."""


class Override:
    """`!override VALUE` of an override file: the attribute is replaced, not merged."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Loader(yaml.SafeLoader):
    pass


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    return Reset()


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


_Loader.add_constructor("!reset", _reset)
_Loader.add_constructor("!override", _override)


def load(text: str) -> dict:
    """A compose document; override files may use `!reset` and `!override`."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader with two more tags


def compose() -> dict:
    return load(COMPOSE.read_text())


# Attributes whose values an override replaces instead of merging (compose-spec 13-merge.md).
_REPLACED = {"command", "entrypoint", "test", "network_mode", "image", "build"}


def merge(base: Any, override: Any, key: str = "") -> Any:
    """compose-spec's merge of an override file into `base`: mappings merge key by key,
    sequences append (command-like ones are replaced), `!reset` removes, `!override` replaces."""
    if isinstance(override, Override):
        return copy.deepcopy(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for name, value in override.items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, name)
            else:
                merged[name] = merge(None, value, name)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        return copy.deepcopy(base) + [v for v in override if v not in base]
    if isinstance(override, dict):
        return {k: merge(None, v, k) for k, v in override.items() if not isinstance(v, Reset)}
    return copy.deepcopy(override)


_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, environ: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`: from `environ`, else the
    default (the shipped behaviour); a required variable without a value raises."""
    environ = environ or {}

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if environ.get(name):
            return environ[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name} is required: {argument}")
        return argument if operator else ""

    return _VARIABLE.sub(value, text)


def interpolated(value: Any, environ: dict[str, str] | None = None) -> Any:
    """A whole parsed compose document with every string interpolated."""
    if isinstance(value, dict):
        return {k: interpolated(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolated(v, environ) for v in value]
    return interpolate(value, environ) if isinstance(value, str) else value


@cache
def _schema() -> dict:
    return json.loads(COMPOSE_SCHEMA.read_text())


def schema_errors(document: dict) -> list[str]:
    """What compose-spec's JSON schema says about a (merged, interpolated) compose document."""
    validator = jsonschema.Draft7Validator(_schema())
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def entrypoint() -> list[str]:
    [value] = [v for k, v in dockerfile_instructions() if k == "ENTRYPOINT"]
    return json.loads(value)


# `monitor run` flags the product contract promises (PRODUCT.md: TLS and basic auth in
# exporter-toolkit's format) and docker-compose.yml uses: flag -> how many values it takes. They
# come from another branch; until this checkout's parser has them they are the only unknown
# arguments tolerated, and once it has them, argparse checks them like every other flag.
PROMISED_RUN_FLAGS = {"--web.config.file": 1, "--web.enable-lifecycle": 0}


def unknown_run_args(args: list[str]) -> list[str]:
    """Arguments after `monitor run` that its own parser rejects (promised flags aside)."""
    from monitor.cli import _parser

    parsed, unknown = _parser().parse_known_args(["run", *args])
    assert parsed.command == "run"
    left: list[str] = []
    index = 0
    while index < len(unknown):
        arity = PROMISED_RUN_FLAGS.get(unknown[index])
        if arity is None:
            left.append(unknown[index])
            index += 1
        else:
            index += 1 + arity
    return left
