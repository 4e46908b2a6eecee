"""Reading a feature request, and every way it can be wrong (stdlib only).

A request names entities and features::

    {"entities": {"user_id": [1, 2]}, "features": ["user_transactions", "user_spend_ratios.spend_ratio_7d_30d"]}

``entities`` is either columns (as above, Feast's form) or a list of objects
(``[{"user_id": 1}, {"user_id": 2}]``); ``features`` a list (or comma-separated
string) of ``model`` (all its features) or ``model.feature``. Key values must
have the key's kind: JSON integers for integer keys, strings for string keys
(so ``7`` and ``"7"`` are never confused). A GET request carries the same in its
query string: ``?user_id=1,2&features=user_transactions`` (keys parsed by kind).
Integer keys may list several entities with commas; a string key is one value
per parameter, commas included (``?account_id=a,b`` is the one account "a,b"):
repeat the parameter for several (``?account_id=a&account_id=b``).

On-demand features (``featuresql.compile.on_demand``) also need their model's request
columns, given next to the keys, one value per entity: ``{"user_id": 42,
"advance_amount": 150.00}`` or ``?user_id=42&advance_amount=150.00`` (numbers and
booleans list several with commas, as integer keys). How each value is read:
``featuresql.serving.request_columns``.

A feature service stands for a feature list: ``{"service": "advance_risk",
"entities": ...}`` (``?service=advance_risk``) reads its features under its output
names; ``"version": 2`` pins the version the client was built for.

Mistakes raise ``RequestError`` with the HTTP status to answer: 400 for a
malformed request, 404 for an unknown model, feature or service, 409 for a service
at another version than the one pinned.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from featuresql.serving.manifest import Manifest
from featuresql.serving.request_columns import RequestValueError, request_value

KeyValue = int | str
_TOP_LEVEL = ("entities", "features", "service", "version")
_SERVICE_PARAMETERS = ("features", "service", "version")
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,40}")  # bounded: int() of thousands of digits raises, and costs


class RequestError(Exception):
    """A client mistake: ``status`` (400 or 404) and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FeatureRequest:
    entities: tuple[dict[str, KeyValue], ...]  # key column -> value, one mapping per entity
    features: dict[str, tuple[str, ...]]  # stored model -> its requested features, in request order
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # a service's output names
    on_demand: dict[str, tuple[str, ...]] = field(default_factory=dict)  # on-demand model -> features
    requests: tuple[dict[str, Any], ...] = ()  # per entity, its request columns' values (on-demand)

    def output_name(self, model: str, feature: str) -> str:
        return self.names.get((model, feature)) or f"{model}__{feature}"


def parse_request(payload: Any, manifest: Manifest) -> FeatureRequest:
    """A JSON request body (already decoded) as a ``FeatureRequest``."""
    if not isinstance(payload, dict):
        raise RequestError(400, 'the request must be a JSON object such as {"entities": {...}, "features": [...]}')
    unknown = sorted(set(payload) - set(_TOP_LEVEL))
    if unknown:
        raise RequestError(
            400,
            f"unknown key {unknown[0]!r}{_closest(unknown[0], _TOP_LEVEL)}; a request has 'entities' and "
            "'features' (or 'service', and optionally its 'version')",
        )
    features, names = _requested(payload.get("features"), payload.get("service"), payload.get("version"), manifest)
    rows = _entity_rows(payload.get("entities"))
    return _request(rows, features, names, manifest, text=False)


def parse_query(parameters: Mapping[str, Sequence[str]], manifest: Manifest) -> FeatureRequest:
    """A GET request's query parameters (name -> values, as ``urllib.parse.parse_qs`` gives them)."""
    listed = [v for value in parameters.get("features", ()) for v in value.split(",")]
    service = _single(parameters, "service")
    version = _single(parameters, "version")
    if version is not None:
        if not _INTEGER_TEXT.fullmatch(version):
            raise RequestError(400, f"'version' must be a service's version number, not {_shown(version)}")
        version = int(version)
    features, names = _requested(listed or None, service, version, manifest)
    listed_columns = {
        c: k for m in features if m in manifest.on_demand for c, k in manifest.on_demand[m].request.items()
    }
    columns: dict[str, list[Any]] = {}
    for name, values in parameters.items():
        if name in _SERVICE_PARAMETERS:
            continue
        kind = manifest.key_kinds.get(name)
        several = kind == "integer" or listed_columns.get(name, "string") != "string"  # text is taken whole
        texts = [part for value in values for part in (value.split(",") if several else [value])]
        columns[name] = [_parse_key_text(name, text, kind) if kind else text for text in texts]
    rows = _entity_rows(columns)
    return _request(rows, features, names, manifest, text=True)


def _request(
    rows: list[dict[str, Any]],
    features: dict[str, tuple[str, ...]],
    names: dict[tuple[str, str], str],
    manifest: Manifest,
    *,
    text: bool,
) -> FeatureRequest:
    """The request, its on-demand features and each entity's request values split from its keys."""
    stored = {model: chosen for model, chosen in features.items() if model not in manifest.on_demand}
    on_demand = {model: chosen for model, chosen in features.items() if model in manifest.on_demand}
    columns = {c: k for model in on_demand for c, k in manifest.on_demand[model].request.items()}
    read = [*stored, *(m for model in on_demand for m in manifest.on_demand[model].models)]
    entities, requests = [], []
    for number, row in enumerate(_checked_count(rows, manifest)):
        values = {}
        for name, kind in columns.items():
            if name not in row:
                users = ", ".join(m for m in on_demand if name in manifest.on_demand[m].request)
                raise RequestError(400, f"entity {number} has no {name!r}, a request column of {users} ({kind})")
            try:
                values[name] = request_value(row[name], kind, text=text)
            except RequestValueError as exc:
                raise RequestError(400, f"{name} of entity {number} {exc}") from None
        entities.append({name: value for name, value in row.items() if name not in columns})
        requests.append(values)
    checked = _checked_entities(entities, list(dict.fromkeys(read)), manifest, strict_types=not text)
    return FeatureRequest(checked, stored, names, on_demand, tuple(requests) if on_demand else ())


def _single(parameters: Mapping[str, Sequence[str]], name: str) -> Any:
    values = parameters.get(name, ())
    if len(values) > 1:
        raise RequestError(400, f"{name!r} is given {len(values)} times: give it once")
    return values[0] if values else None


def _requested(
    features: Any, service: Any, version: Any, manifest: Manifest
) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, str], str]]:
    """The features to read (model -> features) and their output names, from a feature list or a service."""
    if service is None:
        if version is not None:
            raise RequestError(400, "'version' pins a service: give 'service' too")
        if manifest.only_service is not None:
            raise RequestError(
                400,
                f"this reader serves the feature service {manifest.only_service!r} only: request "
                f'{{"service": "{manifest.only_service}", "entities": ...}}',
            )
        return _features(features, manifest), {}
    if features is not None:
        raise RequestError(400, "give either 'features' or 'service', not both")
    if not isinstance(service, str):
        raise RequestError(400, "'service' must be a feature service's name (a string)")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise RequestError(400, f"'version' must be a service's version number, not {_shown(version)}")
    served = manifest.services.get(service)
    if served is None or (manifest.only_service is not None and service != manifest.only_service):
        offered = [manifest.only_service] if manifest.only_service else sorted(manifest.services)
        listing = ", ".join(offered) or "none"
        raise RequestError(404, f"unknown feature service {service!r}{_closest(service, offered)}; services: {listing}")
    if version is not None and version != served.version:
        declared = "no version" if served.version is None else f"version {served.version}"
        raise RequestError(
            409, f"service {service!r} is at {declared} here, not {version}: deploy the reader of the version you need"
        )
    chosen: dict[str, list[str]] = {}
    for model, feature, _ in served.features:
        chosen.setdefault(model, []).append(feature)
    names = {(model, feature): output for model, feature, output in served.features}
    return {model: tuple(features) for model, features in chosen.items()}, names


def _features(value: Any, manifest: Manifest) -> dict[str, tuple[str, ...]]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if value is None or value == []:
        raise RequestError(400, "no features requested: give 'features' as a list of model or model.feature")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(400, '\'features\' must be a list of strings such as "model" or "model.feature"')
    chosen: dict[str, list[str]] = {}
    for item in (part.strip() for part in value):
        if not item:
            raise RequestError(400, "an empty feature name in 'features': give model or model.feature")
        model_name, _, feature = item.partition(".")
        model = manifest.models.get(model_name) or manifest.on_demand.get(model_name)
        if model is None and model_name in manifest.unserved:
            raise RequestError(404, manifest.unserved[model_name])
        if model is None:
            known = [*manifest.models, *manifest.on_demand]
            raise RequestError(
                404,
                f"unknown online model {model_name!r}{_closest(model_name, known)}; "
                f"online models: {', '.join(sorted(known)) or 'none'}",
            )
        columns = chosen.setdefault(model_name, [])
        if not feature:
            columns.extend(name for name in model.features if name not in columns)
        elif feature not in model.features:
            raise RequestError(
                404,
                f"model {model_name!r} has no feature {feature!r}"
                f"{_closest(feature, model.features)}; its features: {', '.join(model.features)}",
            )
        elif feature not in columns:
            columns.append(feature)
    return {model: tuple(columns) for model, columns in chosen.items()}


def _entity_rows(value: Any) -> list[dict[str, Any]]:
    """Entities as one mapping per entity, from the columns form or the list-of-objects form."""
    if isinstance(value, dict):
        if not value:
            raise RequestError(400, "'entities' is empty: give key columns, e.g. {\"user_id\": [1, 2]}")
        columns = {name: values if isinstance(values, list) else [values] for name, values in value.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
            raise RequestError(400, f"the key columns in 'entities' have different lengths ({sizes})")
        count = lengths.pop()
        return [{name: values[row] for name, values in columns.items()} for row in range(count)]
    if isinstance(value, list):
        if not all(isinstance(row, dict) for row in value):
            raise RequestError(400, "each entity in the 'entities' list must be an object such as {\"user_id\": 1}")
        return list(value)
    if value is None:
        raise RequestError(400, "no entities given: add 'entities', e.g. {\"user_id\": [1, 2]}")
    raise RequestError(400, "'entities' must be an object of key columns or a list of objects")


def _checked_count(rows: list[dict[str, Any]], manifest: Manifest) -> list[dict[str, Any]]:
    if not rows:
        raise RequestError(400, "no entities given: 'entities' is empty")
    if len(rows) > manifest.max_entities:
        raise RequestError(400, f"too many entities: {len(rows)} (at most {manifest.max_entities} per request)")
    return rows


def _checked_entities(
    rows: list[dict[str, Any]], features: Sequence[str], manifest: Manifest, *, strict_types: bool
) -> tuple[dict[str, KeyValue], ...]:
    """Each entity's keys: known key columns of the right kind, every one the read ``features``' models need."""
    needed = {column for model in features for column in manifest.models[model].key_columns}
    for number, row in enumerate(rows):
        for name, value in row.items():
            kind = manifest.key_kinds.get(name)
            if kind is None:
                raise RequestError(
                    400,
                    f"unknown entity key {name!r}{_closest(name, manifest.key_kinds)}; "
                    f"entity keys: {', '.join(sorted(manifest.key_kinds))}",
                )
            if strict_types:
                _check_key_type(name, value, kind, number)
        missing = sorted(needed - set(row))
        if missing:
            requested = sorted(m for m in features if missing[0] in manifest.models[m].key_columns)
            raise RequestError(400, f"entity {number} has no {missing[0]!r}, the key of {', '.join(requested)}")
    return tuple(rows)


def _check_key_type(name: str, value: Any, kind: str, number: int) -> None:
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(400, f"{name} is an integer key: entity {number} has {_shown(value)} ({_json_type(value)})")
    if kind == "string" and not isinstance(value, str):
        raise RequestError(400, f"{name} is a string key: entity {number} has {_shown(value)} ({_json_type(value)})")
    if kind == "string" and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): no key, and no UTF-8 answer
            raise RequestError(400, f"{name} of entity {number} is not valid Unicode text: {value!r}") from None


def _parse_key_text(name: str, text: str, kind: str | None) -> KeyValue:
    if kind == "integer":
        if not _INTEGER_TEXT.fullmatch(text):  # int() would also take " 7", "1_000" and other scripts' digits
            raise RequestError(400, f"{name} is an integer key: {text!r} is not an integer")
        return int(text)
    return text


def _shown(value: Any) -> str:
    """A JSON value as the Lambda runtime's decoding would show it (a body's numbers are parsed as
    decimals, a direct invocation's as doubles: the same message either way)."""
    return repr(float(value)) if isinstance(value, Decimal) else repr(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        Decimal: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _closest(name: str, candidates: Any) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
