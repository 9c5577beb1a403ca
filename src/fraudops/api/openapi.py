"""The OpenAPI document of the profile in service: its transaction fields in place of Sparkov's.

The routes declare the canonical (Sparkov) transaction; when the champion was trained on
another profile, the document shows that profile's request model instead (built from the
profile by fraudops.data.profile_schema), so /openapi.json always says what /v1/score reads.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fraudops.data.profile_schema import TransactionSchema, example_records, transaction_schema
from fraudops.data.profiles import SPARKOV, DatasetProfile

_CANONICAL_REF = "#/components/schemas/CanonicalTransaction"


def served_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that documents the transactions of the profile in service (built once
    per profile)."""
    documents: dict[DatasetProfile, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        service = getattr(app.state, "service", None)
        schema = service.schema if service is not None else transaction_schema(SPARKOV)
        if schema.profile not in documents:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            if not schema.is_canonical:
                document = with_profile_transaction(document, schema)
            documents[schema.profile] = document
        return documents[schema.profile]

    return openapi


def with_profile_transaction(document: dict[str, Any], schema: TransactionSchema) -> dict[str, Any]:
    """The document with the profile's transaction model wherever the canonical one was."""
    model = schema.request_model
    name = model.__name__
    body = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    body["examples"] = example_records(schema.profile)[:1]
    components.pop("CanonicalTransaction", None)
    components[name] = body
    replaced: dict[str, Any] = _replace_ref(document, f"#/components/schemas/{name}")
    return replaced


def _replace_ref(node: Any, target: str) -> Any:
    """`node` with every reference to the canonical transaction pointing at `target`."""
    if isinstance(node, dict):
        if node.get("$ref") == _CANONICAL_REF:
            return {**node, "$ref": target}
        return {key: _replace_ref(value, target) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_ref(item, target) for item in node]
    return node
