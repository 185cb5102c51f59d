"""Safe LanceDB filter expressions: built from `lancedb.expr` literals, never from SQL text with user input."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable

from lancedb.expr import col, lit


def equal_to(field: str, value: str):
    """`field = value`, the value quoted by LanceDB (quotes and SQL-ish text match literally)."""
    return col(field) == lit(value)


def one_of(field: str, values: Iterable[str]):
    """`field IN (values...)`, each value a quoted literal; one flat list, so any number of values is safe.

    (A chain of `any_of(equal_to(...))` nests one level per value, and LanceDB overflows its stack on a
    thousand or more of them: the process dies.)
    """
    return col(field).isin([lit(value) for value in values])


def all_of(terms: Iterable):
    """The conjunction of the terms, or None when there are none (no filter)."""
    terms = list(terms)
    return functools.reduce(operator.and_, terms) if terms else None


def any_of(terms: Iterable):
    """The disjunction of the terms, or None when there are none."""
    terms = list(terms)
    return functools.reduce(operator.or_, terms) if terms else None
