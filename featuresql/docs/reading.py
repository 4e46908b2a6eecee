"""How a service reads an online model: an example request to the reader, and the same from the CLI.

The request is the reader's JSON body (``featuresql.serving.request``): the same for
a direct Lambda invocation, API Gateway, a function URL and ``featuresql serve``.
The example entity takes the key's kind from project.yml: 42 for integer keys,
``"42"`` for string keys (the reader never confuses the two).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from featuresql.compile.models import CompiledModel
from featuresql.project.loader import Project
from featuresql.sql.types import reader_key_kind

EXAMPLE_KEY = 42
SERVE_URL = "http://127.0.0.1:8080/features"


def online_reading(model: CompiledModel, project: Project, store: str, target: str | None) -> dict[str, Any] | None:
    """The example request, response fields and commands for ``model``; None for an offline model.

    ``target`` is the target the docs were generated for when one was named (it is
    then passed to the commands).
    """
    if not model.settings.online:
        return None
    entity = _example_entity(model, project)
    request = {"entities": [entity], "features": [model.name]}
    body = json.dumps(request)
    option = f" --target {target}" if target else ""
    keys = " ".join(f"{key}={value}" for key, value in entity.items())
    count_like = {feature.name for feature in model.features if feature.count_like}
    return {
        "store": store,
        "request": request,
        "request_body": body,
        "read_command": f"featuresql read {keys} -f {model.name}{option}",
        "serve_command": f"featuresql serve{option}",
        "curl_post": f"curl -s {SERVE_URL} -H 'content-type: application/json' -d '{body}'",
        "get_url": f"{SERVE_URL}?{urlencode({**entity, 'features': model.name})}",
        "response_features": [
            {"name": f"{model.name}__{column}", "missing_value": 0 if column in count_like else None}
            for column in model.feature_columns
        ],
    }


def _example_entity(model: CompiledModel, project: Project) -> dict[str, Any]:
    types = {
        column.lower(): kind for entity in project.config.entities.values() for column, kind in entity.keys.items()
    }
    return {
        key: EXAMPLE_KEY if reader_key_kind(types.get(key), project.config.dialect) == "integer" else str(EXAMPLE_KEY)
        for key in model.settings.keys
    }
