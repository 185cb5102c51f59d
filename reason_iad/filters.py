"""Safe LanceDB filter expressions: built from `lancedb.expr` literals, never from SQL text with user input."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable

from lancedb.expr import col, lit


def equal_to(field: str, value: str):
    """`field = value`, the value quoted by LanceDB (quotes and SQL-ish text match literally)."""
    return col(field) == lit(value)


def all_of(terms: Iterable):
    """The conjunction of the terms, or None when there are none (no filter)."""
    terms = list(terms)
    return functools.reduce(operator.and_, terms) if terms else None


def any_of(terms: Iterable):
    """The disjunction of the terms, or None when there are none."""
    terms = list(terms)
    return functools.reduce(operator.or_, terms) if terms else None
