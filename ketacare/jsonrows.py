"""Model instances from rows that PostgreSQL returns as JSON.

A page that reads several short lists (a course's decisions, a patient's medications) pays a
round trip and an ORM compilation for each. On PostgreSQL they can come in one statement,
each list as ``json_agg(json_build_array(<columns>))`` text: parsed in C, then typed here as
the ORM types them (times, days, decimals, UUIDs) and made into instances with
``Model.from_db``, as a queryset makes them. Used by ``courses.record`` and the patient page;
each keeps its ORM queries for other databases, and its tests compare the two.
"""

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.models import Model

from accounts.models import User


def loads(text: str):
    return json.loads(text, parse_float=Decimal)  # 0.500 mg/kg stays exact


def decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


_TYPES = {"DateTimeField": datetime.fromisoformat, "DateField": date.fromisoformat,
          "DecimalField": decimal, "UUIDField": uuid.UUID}


def columns(model: type[Model], alias: str) -> str:
    """The SQL of ``model``'s concrete columns over ``alias``, in the order :func:`reader`
    reads them. A JSON column comes as its text, decoded by its field as the ORM decodes it
    (within the row's JSON, its numbers would come as Decimal, not float)."""
    quote = connection.ops.quote_name
    return ", ".join(
        f"{alias}.{quote(field.column)}" + ("::text" if _is_json(field) else "")
        for field in model._meta.concrete_fields
    )


def _is_json(field) -> bool:
    return field.get_internal_type() == "JSONField"


@cache
def reader(model: type[Model]):
    """``values -> instance`` of ``model`` from its concrete fields' JSON values."""
    fields = model._meta.concrete_fields
    attnames = [field.attname for field in fields]
    typed = [(i, _TYPES[kind]) for i, field in enumerate(fields)
             if (kind := field.get_internal_type()) in _TYPES]
    typed += [(i, lambda text, field=field: field.from_db_value(text, None, connection))
              for i, field in enumerate(fields) if _is_json(field)]

    def read(values: list) -> Model:
        for i, kind in typed:
            if values[i] is not None:
                values[i] = kind(values[i])
        return model.from_db(connection.alias, attnames, values)

    return read


# Who signed, as much as User.signature reads, in the model's field order (Model.from_db
# takes a partial row in that order).
SIGNER = tuple(field.attname for field in User._meta.concrete_fields
               if field.attname in {"id", "first_name", "last_name", "username", "credentials"})


def signer_columns(alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(name)}" for name in SIGNER)


def with_signer(model: type[Model], relation: str, rows: list) -> list:
    """Instances of ``model`` from rows of its columns followed by :func:`signer_columns`
    (a LEFT JOIN: None when nobody signed), the signer set on ``relation``."""
    read, width = reader(model), len(model._meta.concrete_fields)
    made = []
    for values in rows:
        instance = read(values[:width])
        signed = values[width:]
        setattr(instance, relation, None if signed[0] is None
                else User.from_db(connection.alias, list(SIGNER), signed))
        made.append(instance)
    return made
