"""The API reference page: self-contained HTML rendered from the OpenAPI spec (no CDN)."""

from __future__ import annotations

import html
import re
from typing import Any

import orjson

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:0 .2em}
pre{padding:.6em;overflow:auto}table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
.op{border-left:4px solid #888;padding-left:1em;margin:2em 0}.method{font-weight:bold}
h3 code{font-size:inherit}
"""


def _md(text: str) -> str:
    """The little markdown the descriptions use: `code`."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _type(schema: dict[str, Any]) -> str:
    """A one-line HTML summary of a JSON schema, linking to component schemas."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{name}">{html.escape(name)}</a>'
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " | ".join(_type(option) for option in schema[combinator])
    if "const" in schema:
        return f"<code>{html.escape(orjson.dumps(schema['const']).decode())}</code>"
    if "enum" in schema:
        return " | ".join(f"<code>{html.escape(str(value))}</code>" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    limits = [
        f"{key} {schema[key]}"
        for key in ("format", "minimum", "maximum", "minLength", "maxLength", "pattern")
        if key in schema
    ]
    if "exclusiveMinimum" in schema:
        limits.append(f"&gt; {schema['exclusiveMinimum']}")
    extra = f" ({html.escape(', '.join(limits), quote=False)})" if limits else ""
    return html.escape(str(kind)) + extra


def _resolve(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in item:
        return item
    _, section, name = item["$ref"].removeprefix("#/").rsplit("/", 2)
    resolved: dict[str, Any] = spec["components"][section][name]
    return resolved


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _operation_html(spec: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> str:
    anchor = op["operationId"]
    parts = [
        f'<div class="op" id="{anchor}"><h3><span class="method">{method.upper()}</span> '
        f"<code>{html.escape(path)}</code> — {_md(op.get('summary', ''))}</h3>"
    ]
    if op.get("description"):
        parts.append(f"<p>{_md(op['description'])}</p>")
    parts.append("<p>Auth: " + ("bearer API key" if op.get("security") else "none") + "</p>")
    parameters = [_resolve(spec, parameter) for parameter in op.get("parameters", [])]
    if parameters:
        rows = [
            [
                f"<code>{html.escape(p['name'])}</code>",
                p["in"],
                "yes" if p.get("required") else "no",
                _type(p.get("schema", {})),
                _md(p.get("description", "")),
            ]
            for p in parameters
        ]
        parts.append("<h4>Parameters</h4>" + _table(["name", "in", "required", "type", ""], rows))
    if "requestBody" in op:
        body = op["requestBody"]
        rows = [
            [f"<code>{html.escape(media)}</code>", _type(content.get("schema", {}))]
            for media, content in body["content"].items()
        ]
        parts.append(f"<h4>Request body</h4><p>{_md(body.get('description', ''))}</p>")
        parts.append(_table(["media type", "schema"], rows))
    rows = []
    for status, response in op["responses"].items():
        content = response.get("content", {})
        schemas = "<br>".join(
            f"<code>{html.escape(media)}</code> {_type(item.get('schema', {}))}"
            for media, item in content.items()
        )
        headers = ", ".join(
            f"<code>{html.escape(name)}</code>" for name in response.get("headers", {})
        )
        rows.append([f"<b>{status}</b>", _md(response["description"]), schemas, headers])
    parts.append("<h4>Responses</h4>" + _table(["status", "when", "body", "headers"], rows))
    return "".join(parts) + "</div>"


def _schema_html(name: str, schema: dict[str, Any]) -> str:
    parts = [f'<h3 id="schema-{name}">{html.escape(name)}</h3>']
    if schema.get("description"):
        parts.append(f"<p>{_md(schema['description'])}</p>")
    if "properties" in schema:
        required = set(schema.get("required", []))
        rows = [
            [
                f"<code>{html.escape(field)}</code>",
                _type(field_schema),
                "yes" if field in required else "no",
                _md(field_schema.get("description", "")),
            ]
            for field, field_schema in schema["properties"].items()
        ]
        parts.append(_table(["field", "type", "required", ""], rows))
    else:
        parts.append(f"<p>{_type(schema)}</p>")
    return "".join(parts)


def render_page(spec: dict[str, Any]) -> str:
    """The reference page: every operation, webhook event and schema, with no external asset."""
    info = spec["info"]
    operations = [
        (method, path, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    toc = "".join(
        f'<li><a href="#{op["operationId"]}">{method.upper()} {html.escape(path)}</a></li>'
        for method, path, op in operations
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(info['title'])}"
        f"</title><style>{_CSS}</style></head><body><h1>{html.escape(info['title'])}</h1>",
        f"<p>{_md(info['description'])} Machine-readable: "
        '<a href="/openapi.json"><code>/openapi.json</code></a>.</p>',
        f"<h2>Operations</h2><ul>{toc}</ul>",
        "".join(_operation_html(spec, method, path, op) for method, path, op in operations),
        "<h2>Webhook events</h2>",
        "".join(
            _operation_html(spec, method, event_type, op)
            for event_type, item in spec["webhooks"].items()
            for method, op in item.items()
        ),
        "<h2>Schemas</h2>",
        "".join(
            _schema_html(name, schema) for name, schema in spec["components"]["schemas"].items()
        ),
        "</body></html>",
    ]
    return "".join(parts)


# -- serving -----------------------------------------------------------------------------------
