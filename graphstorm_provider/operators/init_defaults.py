"""
One pass of Airflow's ``default_args`` machinery per GraphStorm operator, not one per class.

Airflow's ``BaseOperatorMeta`` wraps the ``__init__`` of every operator class with
``apply_defaults``, and each wrapper deep-copies the DAG's params (``get_merged_defaults``)
before filling the class's own arguments from ``default_args``. ``GSTrainOperator`` runs four
such wrappers (its own, ``GraphStormJobOperator``'s, ``GraphStormBaseOperator``'s and
``BaseOperator``'s), which made each GraphStorm task about three times as costly to create at
DAG parse time as an ``EmptyOperator`` (``bench/dag_parse_time.py``).

:func:`fills_default_args` gives a shared base class a light wrapper instead: called from a
subclass's ``__init__`` (whose full wrapper already merged the params and ``default_args``), it
only fills this class's own arguments from the ``default_args`` it is handed - what the full
wrapper would have done - and records them with the operator's init kwargs (``.partial()`` /
mapped operators and serialization read them). Called as the outermost ``__init__`` (a subclass
that defines none), it runs Airflow's full wrapper, so nothing changes for such classes.

:func:`init_base_operator` does the same for ``BaseOperator.__init__`` itself, so a GraphStorm
task copies the DAG's params once, as an ``EmptyOperator`` does, not twice.

:func:`refuse_argument` is how a GraphStorm operator's ``__init__`` refuses a bad argument.
"""

from __future__ import annotations

import functools
from typing import Any, NoReturn, TypeVar

from airflow.sdk import BaseOperator

# What BaseOperatorMeta's wrapper carries (name-mangled in the metaclass); .partial() and
# validate_mapping_kwargs read it on each class's __init__ of the MRO.
PARAM_NAMES_ATTRIBUTE = "_BaseOperatorMeta__param_names"
WRAPPER_ATTRIBUTES = (PARAM_NAMES_ATTRIBUTE, "_BaseOperatorMeta__non_optional_args")
# BaseOperator's record of the arguments an operator was created with.
INIT_KWARGS_ATTRIBUTE = "_BaseOperator__init_kwargs"

C = TypeVar("C", bound=type)


def fills_default_args(cls: C) -> C:
    """Give ``cls`` (a shared operator base class) the light ``__init__`` wrapper described above."""
    full: Any = vars(cls)["__init__"]  # BaseOperatorMeta's apply_defaults wrapper
    raw = full.__wrapped__
    names = getattr(full, PARAM_NAMES_ATTRIBUTE)  # the class's own named arguments, as the wrapper found them

    @functools.wraps(raw)
    def light(self: Any, **kwargs: Any) -> None:
        if type(self).__init__ is light:  # no subclass __init__ ran Airflow's pass: run it here
            full(self, **kwargs)
            return
        _fill_from_default_args(self, kwargs, names)
        raw(self, **kwargs)

    for attribute in WRAPPER_ATTRIBUTES:
        setattr(light, attribute, getattr(full, attribute))
    # functools.wraps set __wrapped__ to the raw function, as the full wrapper has it.
    type.__setattr__(cls, "__init__", light)
    return cls


def _fill_from_default_args(op: Any, kwargs: dict[str, Any], names: set[str]) -> None:
    """Fill the arguments ``names`` that ``kwargs`` lacks from its ``default_args``, as Airflow's pass does."""
    default_args = kwargs.get("default_args") or {}
    filled = {name: default_args[name] for name in names if name not in kwargs and name in default_args}
    if filled:
        kwargs.update(filled)
        getattr(op, INIT_KWARGS_ATTRIBUTE).update(filled)


def init_base_operator(op: Any, cls: type[Any], kwargs: dict[str, Any]) -> None:
    """
    ``super(cls, op).__init__(**kwargs)`` for a class ``cls`` whose next class is ``BaseOperator``.

    Called from ``cls.__init__``, which only ever runs inside a subclass's full ``apply_defaults``
    pass (the outermost ``__init__`` of an operator is always one): that pass has found the DAG
    and task group, merged the params and ``default_args`` and will set the XComArg
    dependencies, so ``BaseOperator``'s own pass would only copy the DAG's params again. This
    fills ``BaseOperator``'s arguments from ``default_args`` and records what it was given, as
    its pass would, and runs its ``__init__``. If another class comes between (a mixin), it
    runs ``super().__init__`` as usual.
    """
    mro = type(op).__mro__
    if mro[mro.index(cls) + 1] is not BaseOperator:
        super(cls, op).__init__(**kwargs)
        return
    full: Any = BaseOperator.__init__
    _fill_from_default_args(op, kwargs, getattr(full, PARAM_NAMES_ATTRIBUTE))
    full.__wrapped__(op, **kwargs)
    getattr(op, INIT_KWARGS_ATTRIBUTE).update({k: v for k, v in kwargs.items() if k != "default_args"})


def refuse_argument(operator: BaseOperator, message: str) -> NoReturn:
    """
    Refuse a bad argument of ``operator``'s ``__init__`` with ``message``, one sentence naming it.

    A ``ValueError`` when the DAG is parsed. A mapped task (``.partial()`` / ``.expand()``) is
    created only when it starts (Airflow's ``unmap``): there an ``AirflowFailException``, so the
    task fails at once, without retries.
    """
    if getattr(operator, "_BaseOperator__from_mapped", False):
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(message)
    raise ValueError(message)
