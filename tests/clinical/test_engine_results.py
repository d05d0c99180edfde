"""The engine's result types: frozen dataclasses whose own __init__ fills every field at once
(clinical.engine, "Results"). They must stay what the generated __init__ would make."""

import dataclasses
import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical.engine import Evaluation, Flag, InstrumentResult, Outcome, evaluate
from tests.clinical.builders import NON, adverse, course, iv, med, scores, series
from tests.clinical.test_engine_properties import courses, escalating_courses

RESULTS = (Evaluation, Flag, InstrumentResult, Outcome)


@pytest.mark.parametrize("cls", RESULTS)
def test_each_init_names_every_field_in_order_with_its_default(cls):
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in parameters] == [f.name for f in dataclasses.fields(cls)]
    for parameter, field in zip(parameters, dataclasses.fields(cls), strict=True):
        default = field.default
        expected = inspect.Parameter.empty if default is dataclasses.MISSING else default
        assert parameter.default == expected, field.name


def test_results_stay_frozen():
    sessions = [*series(4, dose="0.9"), iv(9, **adverse("severe"))]
    evaluation = evaluate(course(sessions, scores(sessions, NON), medications=[med("clonazepam")]))
    values = [evaluation, evaluation.outcome, *evaluation.flags,
              *evaluation.instruments.values()]
    assert {type(value) for value in values} == set(RESULTS)
    for value in values:
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.message = "changed"


@given(facts=st.one_of(courses(), escalating_courses()))
def test_results_hold_every_field_and_equal_their_rebuilt_selves(facts):
    evaluation = evaluate(facts)
    values = [evaluation, evaluation.outcome, *evaluation.flags,
              *evaluation.instruments.values()]
    for value in values:
        names = [f.name for f in dataclasses.fields(value)]
        assert list(vars(value)) == names
        assert type(value)(**{name: getattr(value, name) for name in names}) == value
        assert repr(value).startswith(type(value).__name__ + "(")
