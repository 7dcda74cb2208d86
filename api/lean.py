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

import inspect
import json
import types
from functools import wraps

import marshmallow as ma
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields, missing
from marshmallow.utils import get_value
from sqlalchemy.orm import InstrumentedAttribute

from api.rest import documented_errors


def lean_operation(blp, in_schema: type[ma.Schema], status: int, out_schema, *errors: int):
    """Serve a JSON (or multipart `data`) write as `blp.arguments(in_schema)`,
    `blp.response(status, out_schema)` and `documented_errors(blp, *errors)` would, documented
    by them; the handler is `fn(self, data, **view_args)` and returns what `out_schema` dumps."""
    parser = blp.ARGUMENTS_PARSER
    loader = Loader(in_schema())  # shared: loading leaves a marshmallow 4 schema unchanged
    dump = Dumper(out_schema if isinstance(out_schema, ma.Schema) else out_schema())

    def decorate(fn):
        documented = blp.arguments(in_schema)(
            blp.response(status, out_schema)(documented_errors(blp, *errors)(fn))
        )

        @wraps(fn)
        def handler(self, *args, **kwargs):
            data = parse_body(parser, loader)
            return json_response(dump(fn(self, data, *args, **kwargs)), status)

        handler._apidoc = documented._apidoc  # what flask-smorest documents the route from
        return handler

    return decorate


def json_response(value, status: int):
    """`current_app.json.response(value)` with `status`: for Flask's own provider, the same
    text (its `default`, `ensure_ascii`, `sort_keys`, compact or indented as `compact` and
    debug mode say) by an encoder made once for those settings, not one per answer."""
    app = current_app._get_current_object()
    provider = app.json
    if type(provider) is not DefaultJSONProvider:
        response = provider.response(value)
        response.status_code = status
        return response
    indent = (provider.compact is None and app.debug) or provider.compact is False
    settings = (provider.default, provider.ensure_ascii, provider.sort_keys, indent)
    encoder = _ENCODERS.get(settings)
    if encoder is None:
        encoder = _ENCODERS[settings] = json.JSONEncoder(
            default=provider.default,
            ensure_ascii=provider.ensure_ascii,
            sort_keys=provider.sort_keys,
            indent=2 if indent else None,
            separators=None if indent else (",", ":"),
        )
    text = f"{encoder.encode(value)}\n"
    return app.response_class(text, status=status, mimetype=provider.mimetype)


_ENCODERS: dict[tuple, json.JSONEncoder] = {}


def parse_body(parser, loader: Loader):
    """What webargs' `parser.parse(schema, location="json")` returns or raises: the body (JSON,
    or what the parser reads for the json location), an absent body as {}, loaded by the
    loader's schema; a validation error goes to the parser's error handler (422, field errors
    by location)."""
    schema = loader.schema
    raw = parser.load_json(request, schema)
    try:
        return loader({} if raw is missing else raw)
    except ma.ValidationError as error:
        error.messages = {"json": error.messages}
        parser.handle_error(error, request, schema, error_status_code=None, error_headers=None)
        raise  # handle_error aborts; never reached


class Loader:
    """`schema.load(data)`, with a planned fast path for the common body: a JSON object whose
    keys are the schema's fields, each value of the field's exact JSON type (str, int) and
    passing the field's validators and the schema's @validates_schema hooks. Anything else
    (a wrong type, a bool for an integer, a null where none is allowed, an unknown key, a
    failed validator or hook) is loaded again by marshmallow, so every error is marshmallow's
    own. A schema the plan does not understand (load hooks, partial, other field types) is
    always loaded by marshmallow."""

    # The field types the plan handles: the JSON type a value must have, exactly.
    _TYPES = {fields.String: str, fields.Integer: int, fields.Date: str}

    def __init__(self, schema: ma.Schema):
        self.schema = schema
        self.steps = self._plan(schema)
        self.hooks = self._hooks(schema) if self.steps is not None else None
        self.raise_unknown = schema.unknown == ma.RAISE

    @classmethod
    def _plan(cls, schema: ma.Schema) -> list | None:
        hooks = schema._hooks
        if (
            schema.many
            or schema.partial
            or schema.dict_class is not dict
            or hooks["pre_load"]
            or hooks["post_load"]
            or hooks["validates"]
            or schema.unknown not in (ma.RAISE, ma.EXCLUDE)
        ):
            return None
        steps = []
        for name, field in schema.load_fields.items():
            kind = cls._TYPES.get(type(field))
            if kind is None or field.pre_load or field.post_load:
                return None
            attr = field.attribute or name
            if "." in attr:  # marshmallow sets a nested key
                return None
            parse = None
            if type(field) is fields.Date:
                # The field's own parser for its format (ISO: date.fromisoformat); a format
                # read with strptime is left to marshmallow.
                parse = field.DESERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
                if parse is None:
                    return None
            key = field.data_key if field.data_key is not None else name
            steps.append(
                (key, attr, kind, field.required, field.allow_none, field.load_default)
                + (parse, tuple(field.validators))
            )
        return steps

    @staticmethod
    def _hooks(schema: ma.Schema) -> list:
        # marshmallow runs the collection hooks first, then the others; for one object both
        # get the loaded data (and the raw body when they ask for it).
        found = schema._hooks["validates_schema"]
        ordered = [h for h in found if h[1]] + [h for h in found if not h[1]]
        return [
            (getattr(schema, name), kwargs.get("pass_original", False))
            for name, _many, kwargs in ordered
        ]

    def __call__(self, data):
        if self.steps is not None and type(data) is dict:
            loaded = self._fast(data)
            if loaded is not None:
                return loaded
        return self.schema.load(data)

    def _fast(self, data: dict) -> dict | None:
        """The loaded body, or None: marshmallow must load it (it may be invalid)."""
        out = {}
        found = 0
        for key, attr, kind, required, allow_none, default, parse, validators in self.steps:
            value = data.get(key, missing)
            if value is missing:
                if required:
                    return None
                if default is not missing:
                    out[attr] = default() if callable(default) else default
                continue
            found += 1
            if value is None:
                if not allow_none:
                    return None
                out[attr] = None
                continue
            if type(value) is not kind:
                return None
            if parse is not None:
                try:
                    value = parse(value)
                except (TypeError, AttributeError, ValueError):
                    return None
            try:
                for validator in validators:
                    validator(value)
            except ma.ValidationError:
                return None
            out[attr] = value
        if found != len(data) and self.raise_unknown:
            return None  # an unknown key
        schema = self.schema
        try:
            for hook, pass_original in self.hooks:
                if pass_original:
                    hook(out, data, partial=schema.partial, many=False, unknown=schema.unknown)
                else:
                    hook(out, partial=schema.partial, many=False, unknown=schema.unknown)
        except ma.ValidationError:
            return None
        return out


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
        self._direct: dict[type, bool] = {}  # by class: `_reads_dict`

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

    def _reads_dict(self, cls: type) -> bool:
        """Whether an attribute of a `cls` instance is what its `__dict__` holds, when the key
        is there, for every field read here: attributes are looked up the default way, and no
        field's attribute is a data descriptor of the class (a property) other than a mapped
        attribute SQLAlchemy itself answers from `__dict__` (a loaded column or collection)."""
        if cls.__getattribute__ is not object.__getattribute__ or not isinstance(
            inspect.getattr_static(cls, "__dict__", None), types.GetSetDescriptorType
        ):
            return False
        for _key, source, kind, _field, _nested in self.steps:
            if kind == "field":
                continue  # read by marshmallow
            attr = inspect.getattr_static(cls, source, None)
            if not hasattr(type(attr), "__set__") and not hasattr(type(attr), "__delete__"):
                continue  # the instance's __dict__ comes first
            if not (
                type(attr) is InstrumentedAttribute
                and attr.key == source
                and attr.impl.supports_population
            ):
                return False
        return True

    def _one(self, obj) -> dict:
        plain = not hasattr(obj, "__getitem__")
        state = None
        if plain:
            direct = self._direct.get(type(obj))
            if direct is None:
                direct = self._direct[type(obj)] = self._reads_dict(type(obj))
            if direct:
                state = obj.__dict__
        out = {}
        for key, source, kind, field, nested in self.steps:
            if kind == "field":
                value = field.serialize(source, obj, accessor=self.schema.get_attribute)
                if value is not missing:
                    out[key] = value
                continue
            if state is not None:
                # A loaded attribute is in __dict__; one that is not (expired, deferred, a
                # default) is read as before.
                value = state.get(source, missing)
                if value is missing:
                    value = getattr(obj, source, missing)
            elif plain:
                value = getattr(obj, source, missing)
            else:
                value = get_value(obj, source, missing)
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
