"""Tests for restsync_assets.specs.templates (sandboxed Jinja templates)."""

from __future__ import annotations

import copy

import pytest

from restsync_assets.specs.templates import CompiledTemplate, TemplateError, compile_template

RESPONSE = {"paging": {"next_link": "https://api.example.com/v1/items?cursor=abc"}, "n": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ response.get('paging', {}).get('next_link', {}) }}", RESPONSE["paging"]["next_link"]),
        ("{{ not response.get('paging', {}).get('next_link', {}) }}", False),
        ("{{ response.n > 2 }}", True),
        ("{{ response.n }}", 3),
        ("  {{ response.n + 1 }}\n", 4),
        ("{{- response.n -}}", 3),
        ("{{ response.get('missing') }}", None),
        ("{{ response.get('missing', {}) }}", {}),
        ("{{ last_page[-1].id }}", 7),
        ("{{ headers.get('X-Next') }}", "n2"),
        ("{{ '}}' }}", "}}"),
    ],
)
def test_single_expression_returns_native_value(text: str, expected: object) -> None:
    value = compile_template(text).evaluate(
        response=RESPONSE, last_page=[{"id": 1}, {"id": 7}], headers={"X-Next": "n2"}
    )
    assert value == expected
    assert type(value) is type(expected)


def test_empty_paging_gives_empty_dict_and_true_stop() -> None:
    response = {"paging": {}}
    cursor = compile_template("{{ response.get('paging', {}).get('next_link', {}) }}")
    stop = compile_template("{{ not response.get('paging', {}).get('next_link', {}) }}")
    assert cursor.evaluate(response=response) == {}
    assert stop.evaluate(response=response) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cursor-{{ response.n }}", "cursor-3"),
        ("{{ response.n }}{{ response.n }}", "33"),
        ("{{ response.n }} {{ response.n }}", "3 3"),
        ("plain text", "plain text"),
        ("{% if response.n %}yes{% endif %}", "yes"),
    ],
)
def test_other_templates_render_to_string(text: str, expected: str) -> None:
    assert compile_template(text).evaluate(response=RESPONSE) == expected


@pytest.mark.parametrize(
    "text", ["{{ response.n +", "{% if %}", "{{ x | no_such_filter }}", "{{ }}", "{% for %}"]
)
def test_syntax_errors_raise_at_compile_time(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    message = str(info.value)
    assert "\n" not in message
    assert text.strip() in message


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("{{ response.missing }}", "UndefinedError"),
        ("{{ nope }}", "UndefinedError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("value: {{ nope }}", "UndefinedError"),
    ],
)
def test_evaluation_errors_are_one_line_template_errors(text: str, cause: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(text).evaluate(response=RESPONSE)
    message = str(info.value)
    assert "\n" not in message
    assert text in message
    assert cause in message


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__ }}",
        "{{ response.__class__ }}",
        "{{ (response|attr('__class__')) }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ self._TemplateReference__context }}",
        "{% include '/etc/passwd' %}",
        "{{ response.update({'n': 4}) }}",
        "{{ [].append(1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ ((10 ** 1000) ** 1000) ** 1000 }}",
        "{{ range(10 ** 9) | list }}",
    ],
)
def test_hostile_templates_are_blocked(text: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(text).evaluate(response=dict(RESPONSE))


def test_hostile_template_does_not_mutate_context() -> None:
    response = {"n": 1}
    with pytest.raises(TemplateError):
        compile_template("{{ response.update({'n': 2}) }}").evaluate(response=response)
    assert response == {"n": 1}


def test_compiled_template_is_shared_on_copy_and_accepted_by_compile() -> None:
    template = compile_template("{{ response.n }}")
    assert isinstance(template, CompiledTemplate)
    assert template.source == "{{ response.n }}"
    assert template.is_expression
    assert copy.deepcopy(template) is template
    assert compile_template(template) is template
    assert not compile_template("a{{ 1 }}").is_expression
