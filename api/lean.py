"""Lean JSON operations: a hot write endpoint (recording) served without flask-smorest's and
webargs' per-request wrappers, and documented exactly as those decorators document it.

`lean_operation(blp, In, 201, Out, *errors)` on a MethodView handler stands for

    @blp.arguments(In)
    @blp.response(201, Out)
    @documented_errors(blp, *errors)

The decorators are applied once, at import, for their OpenAPI documentation only (the
`_apidoc` flask-smorest collects from the handler when the route is registered); at run time
the body is parsed and the answer dumped by the code below, which does what the decorators'
wrappers did (same parser, same schema rules, same errors) with a fraction of the Python calls
(docs/decisions/0026-lean-record-endpoints.md).
"""

from __future__ import annotations

from functools import wraps

import marshmallow as ma
from flask import current_app, request
from marshmallow import fields, missing
from marshmallow.utils import get_value

from api.rest import documented_errors


def lean_operation(blp, in_schema: type[ma.Schema], status: int, out_schema, *errors: int):
    """Serve a JSON (or multipart `data`) write as `blp.arguments(in_schema)`,
    `blp.response(status, out_schema)` and `documented_errors(blp, *errors)` would, documented
    by them; the handler is `fn(self, data, **view_args)` and returns what `out_schema` dumps."""
    parser = blp.ARGUMENTS_PARSER
    loader = in_schema()  # shared: loading leaves a marshmallow 4 schema unchanged
    dump = Dumper(out_schema if isinstance(out_schema, ma.Schema) else out_schema())

    def decorate(fn):
        documented = blp.arguments(in_schema)(
            blp.response(status, out_schema)(documented_errors(blp, *errors)(fn))
        )

        @wraps(fn)
        def handler(self, *args, **kwargs):
            data = parse_body(parser, loader)
            response = current_app.json.response(dump(fn(self, data, *args, **kwargs)))
            response.status_code = status
            return response

        handler._apidoc = documented._apidoc  # what flask-smorest documents the route from
        return handler

    return decorate


def parse_body(parser, schema: ma.Schema):
    """What webargs' `parser.parse(schema, location="json")` returns or raises: the body (JSON,
    or what the parser reads for the json location), an absent body as {}, loaded by `schema`;
    a validation error goes to the parser's error handler (422, field errors by location)."""
    raw = parser.load_json(request, schema)
    try:
        return schema.load({} if raw is missing else raw)
    except ma.ValidationError as error:
        error.messages = {"json": error.messages}
        parser.handle_error(error, request, schema, error_status_code=None, error_headers=None)
        raise  # handle_error aborts; never reached


class Dumper:
    """`schema.dump(obj)` for a plain schema, planned once: each field's value is read and
    formatted directly (integers, strings, dates inline, nested schemas by their own plan, any
    other field by its own `serialize`), instead of through marshmallow's accessor chain."""

    def __init__(self, schema: ma.Schema):
        if schema._hooks["pre_dump"] or schema._hooks["post_dump"]:
            raise TypeError(f"{type(schema).__name__} has dump hooks: not a plain schema")
        if type(schema).get_attribute is not ma.Schema.get_attribute:
            raise TypeError(f"{type(schema).__name__} reads attributes its own way")
        self.schema = schema
        self.many = schema.many
        self.steps = [self._step(name, field) for name, field in schema.dump_fields.items()]

    @staticmethod
    def _step(name: str, field: fields.Field):
        key = field.data_key if field.data_key is not None else name
        source = field.attribute if field.attribute is not None else name
        kind = "field"
        nested = None
        if "." in source or not field._CHECK_ATTRIBUTE:
            kind = "field"
        elif type(field) is fields.Integer and not field.as_string:
            kind = "int"
        elif type(field) is fields.String:
            kind = "str"
        elif type(field) in (fields.Date, fields.DateTime) and field.SERIALIZATION_FUNCS.get(
            field.format or field.DEFAULT_FORMAT
        ):
            # The format is fixed once the field is bound (e.g. "iso": date.isoformat).
            kind, nested = "call", field.SERIALIZATION_FUNCS[field.format or field.DEFAULT_FORMAT]
        elif type(field) is fields.Nested:
            kind, nested = "nested", (Dumper(field.schema), field.schema.many or field.many)
        elif type(field) is fields.List and type(field.inner) is fields.Nested:
            inner = field.inner
            kind, nested = "list", (Dumper(inner.schema), inner.schema.many or inner.many)
        return key, source, kind, field, nested

    def __call__(self, obj, *, many: bool | None = None):
        if self.many if many is None else many:
            return [self._one(item) for item in obj]
        return self._one(obj)

    def _one(self, obj) -> dict:
        plain = not hasattr(obj, "__getitem__")
        out = {}
        for key, source, kind, field, nested in self.steps:
            if kind == "field":
                value = field.serialize(source, obj, accessor=self.schema.get_attribute)
                if value is not missing:
                    out[key] = value
                continue
            value = getattr(obj, source, missing) if plain else get_value(obj, source, missing)
            if value is missing:  # a dump default, or no key at all: marshmallow decides
                value = field.serialize(source, obj, accessor=self.schema.get_attribute)
                if value is not missing:
                    out[key] = value
                continue
            if value is None:
                out[key] = None
            elif kind == "int":
                out[key] = int(value)
            elif kind == "str":
                out[key] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            elif kind == "call":
                out[key] = nested(value)
            elif kind == "nested":
                out[key] = nested[0](value, many=nested[1])
            else:  # a list of nested objects
                dump, many = nested
                out[key] = [dump(item, many=many) for item in value]
        return out
