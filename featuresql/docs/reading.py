"""How an application reads an online model or a feature service: example requests, and the same from the CLI.

The request is the reader's JSON body (``featuresql.serving.request``): the same for
a direct Lambda invocation, API Gateway, a function URL and ``featuresql serve``.
The example entity takes the key's kind from project.yml: 42 for integer keys,
``"42"`` for string keys (the reader never confuses the two). A feature service
is also read offline: its training set from ``featuresql extract`` or
``featuresql.extract``, with the same output names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from featuresql.compile.models import CompiledModel, Service
from featuresql.project.loader import Project
from featuresql.sql.types import reader_key_kind

EXAMPLE_KEY = 42
EXAMPLE_SPINE = "labels.parquet"  # a spine file: the entity keys, a time column, the labels
EXAMPLE_OUT = "training.parquet"
SERVE_URL = "http://127.0.0.1:8080/features"


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


def service_reading(
    service: Service, keys: Sequence[str], project: Project, store: str, target: str | None
) -> dict[str, Any]:
    """The reader's request for ``service`` (entity ``keys``: its models' key columns) and the same from the CLI."""
    entity = example_entity(keys, project)
    request = {"service": service.name, "entities": [entity]}
    option = f" --target {target}" if target else ""
    return {
        "store": store,
        **_calls(request, entity, f"--service {service.name}", target),
        "package_command": f"featuresql package-lambda --service {service.name}{option}",
    }


def service_extract(service: Service, target: str | None) -> dict[str, str]:
    """The training set of ``service``: the ``featuresql extract`` command and the Python call."""
    option = f" --target {target}" if target else ""
    argument = f", target={json.dumps(target)}" if target else ""
    return {
        "spine": EXAMPLE_SPINE,
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
    body = json.dumps(request)
    option = f" --target {target}" if target else ""
    keys = " ".join(f"{key}={value}" for key, value in entity.items())
    query = {key: value for key, value in request.items() if key != "entities"}
    return {
        "request": request,
        "request_body": body,
        "read_command": f"featuresql read {keys} {selection}{option}",
        "serve_command": f"featuresql serve{option}",
        "curl_post": f"curl -s {SERVE_URL} -H 'content-type: application/json' -d '{body}'",
        "get_url": f"{SERVE_URL}?{urlencode({**entity, **query}, doseq=True)}",
    }


def example_entity(keys: Sequence[str], project: Project) -> dict[str, Any]:
    """One example entity: each key column with 42, as a number or a string as the key's kind is."""
    types = {
        column.lower(): kind for entity in project.config.entities.values() for column, kind in entity.keys.items()
    }
    return {
        key: EXAMPLE_KEY if reader_key_kind(types.get(key), project.config.dialect) == "integer" else str(EXAMPLE_KEY)
        for key in keys
    }
