"""How an application reads an online model or a feature service: example requests, and the same from the CLI.

The request is the reader's JSON body (``featuresql.serving.request``): the same for
a direct Lambda invocation, API Gateway, a function URL and ``featuresql serve``.
The example entity takes the key's kind from project.yml: 42 for integer keys,
``"42"`` for string keys (the reader never confuses the two). On-demand features
also need their model's request columns, next to the keys in each entity
(``featuresql.serving.request_columns``): an example value of each declared type,
``150.00`` for a ``decimal(12,2)`` (a number, written digit for digit), 1 for an
integer, 1.5 for a double, ``"text"`` for a string, ``true`` for a boolean. A feature
service is also read offline: its training set from ``featuresql extract`` or
``featuresql.extract``, with the same output names; there the spine carries the
request columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from featuresql.compile.models import CompiledModel, OnDemandModel, Service
from featuresql.compile.on_demand import duckdb_type
from featuresql.project.loader import Project
from featuresql.sql.expressions import kind_of
from featuresql.sql.types import reader_key_kind

EXAMPLE_KEY = 42
EXAMPLE_SPINE = "labels.parquet"  # a spine file: the entity keys, a time column, the labels
EXAMPLE_OUT = "training.parquet"
SERVE_URL = "http://127.0.0.1:8080/features"
EXAMPLE_AMOUNT = 150  # the whole part of an example decimal, when its precision leaves room for it
_EXAMPLE_VALUES = {
    "float": 1.5,
    "boolean": True,
    "string": "text",
    "timestamp": "2026-06-30T10:00:00Z",
    "date": "2026-06-30",
}


def online_reading(model: CompiledModel, project: Project, store: str, target: str | None) -> dict[str, Any] | None:
    """The example request, response fields and commands for ``model``; None for an offline model.

    ``target`` is the target the docs were generated for when one was named (it is
    then passed to the commands).
    """
    if not model.settings.online:
        return None
    entity = example_entity(model.settings.keys, project)
    count_like = {feature.name for feature in model.features if feature.count_like}
    return {
        "store": store,
        **_calls({"entities": [entity], "features": [model.name]}, entity, f"-f {model.name}", target),
        "response_features": [
            {"name": f"{model.name}__{column}", "missing_value": 0 if column in count_like else None}
            for column in model.feature_columns
        ],
    }


def on_demand_reading(model: OnDemandModel, project: Project, store: str, target: str | None) -> dict[str, Any]:
    """The example request of an on-demand model (its keys and request columns), as ``online_reading``."""
    entity = example_entity(model.keys, project) | request_examples(model.request, project.config.dialect)
    return {
        "store": store,
        **_calls({"entities": [entity], "features": [model.name]}, entity, f"-f {model.name}", target),
        "response_features": [
            {"name": f"{model.name}__{column}", "missing_value": None, "on_demand": True}
            for column in model.feature_columns
        ],
    }


def service_reading(
    service: Service,
    keys: Sequence[str],
    request_columns: Mapping[str, str],
    project: Project,
    store: str,
    target: str | None,
) -> dict[str, Any]:
    """The reader's request for ``service`` and the same from the CLI.

    ``keys`` are its models' key columns; ``request_columns`` (name -> declared type) those
    of its on-demand models, sent next to the keys.
    """
    entity = example_entity(keys, project) | request_examples(request_columns, project.config.dialect)
    request = {"service": service.name, "entities": [entity]}
    option = f" --target {target}" if target else ""
    return {
        "store": store,
        **_calls(request, entity, f"--service {service.name}", target),
        "package_command": f"featuresql package-lambda --service {service.name}{option}",
    }


def service_extract(service: Service, request_columns: Mapping[str, str], target: str | None) -> dict[str, Any]:
    """The training set of ``service``: the ``featuresql extract`` command and the Python call.

    The spine must carry ``request_columns`` (name -> declared type): each row is the
    request its on-demand features are computed from.
    """
    option = f" --target {target}" if target else ""
    argument = f", target={json.dumps(target)}" if target else ""
    return {
        "spine": EXAMPLE_SPINE,
        "request_columns": [{"name": name, "type": kind} for name, kind in request_columns.items()],
        "extract_command": (
            f"featuresql extract --spine {EXAMPLE_SPINE} --service {service.name} --out {EXAMPLE_OUT}{option}"
        ),
        "python": (
            "import featuresql\n\n"
            f"training = featuresql.extract({json.dumps(EXAMPLE_SPINE)}, service={json.dumps(service.name)}{argument})"
        ),
    }


def _calls(request: dict[str, Any], entity: dict[str, Any], selection: str, target: str | None) -> dict[str, Any]:
    """``request`` as the reader's body, as ``featuresql read`` (``selection``: its -f or --service) and over HTTP."""
    body = _json_text(request)
    option = f" --target {target}" if target else ""
    values = {key: _query_text(value) for key, value in entity.items()}
    keys = " ".join(f"{key}={value}" for key, value in values.items())
    query = {key: value for key, value in request.items() if key != "entities"}
    return {
        "request": json.loads(body),  # a decimal as a JSON number, as a client decodes the body
        "request_body": body,
        "read_command": f"featuresql read {keys} {selection}{option}",
        "serve_command": f"featuresql serve{option}",
        "curl_post": f"curl -s {SERVE_URL} -H 'content-type: application/json' -d '{body}'",
        "get_url": f"{SERVE_URL}?{urlencode({**values, **query}, doseq=True)}",
    }


def _json_text(value: Any) -> str:
    """JSON as ``json.dumps`` writes it, but a ``Decimal`` digit for digit (150.00, which a float cannot say)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {_json_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(item) for item in value) + "]"
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


def _query_text(value: Any) -> str:
    """A value as a query string and ``featuresql read`` carry it (booleans as true and false)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def example_entity(keys: Sequence[str], project: Project) -> dict[str, Any]:
    """One example entity: each key column with 42, as a number or a string as the key's kind is."""
    types = {
        column.lower(): kind for entity in project.config.entities.values() for column, kind in entity.keys.items()
    }
    return {
        key: EXAMPLE_KEY if reader_key_kind(types.get(key), project.config.dialect) == "integer" else str(EXAMPLE_KEY)
        for key in keys
    }


def service_request_columns(service: Service, on_demand: Mapping[str, OnDemandModel]) -> dict[str, str]:
    """The request columns of the service's on-demand models (name -> declared type), in the order they come."""
    return {
        column: kind for name in service.models if name in on_demand for column, kind in on_demand[name].request.items()
    }


def request_examples(columns: Mapping[str, str], dialect: str) -> dict[str, Any]:
    """An example value of each request column (name -> its type, as DuckDB writes it: the compiler
    normalizes declared types; ``dialect`` is the project's, for a type written otherwise)."""
    return {name: example_value(kind_of(duckdb_type(kind, "duckdb"))) for name, kind in columns.items()}


def example_value(kind: str) -> Any:
    """A value of expression type ``kind`` (``decimal(12,2)``, ``int64``...) the reader accepts as is."""
    if kind.startswith("decimal"):
        precision, scale = (int(part) for part in kind[len("decimal(") : -1].split(","))
        whole = EXAMPLE_AMOUNT if precision - scale >= len(str(EXAMPLE_AMOUNT)) else 1
        return Decimal(whole).quantize(Decimal(1).scaleb(-scale))
    if kind.startswith("int"):
        return 1
    return _EXAMPLE_VALUES.get(kind, "text")
