from pathlib import Path

import pytest
import yaml

from th1nker.tasks.sampling import geometric_weights
from th1nker.tasks.scheme import SchemeError, TaskScheme, load_scheme

CONFIGS = Path(__file__).parent.parent / "configs" / "tasks"


def test_default_yaml_is_the_builtin_default():
    assert load_scheme(CONFIGS / "default.yaml") == TaskScheme() == load_scheme()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_schemes_load(path):
    scheme = load_scheme(path)
    assert load_scheme(None, []) is not None
    assert TaskScheme.model_validate(yaml.safe_load(scheme.to_yaml())) == scheme


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["generators.0.type=foo"], "generators.0: Input tag 'foo'.*expected tags: 'arithmetic'"),
        (["bases.values=[2,300]"], r"bases.values.1: base 300 is outside the allowed bases 2..256"),
        (["bases.values=[1]"], r"base 1 is outside the allowed bases 2..256"),
        (["generators.0.operands=[5,3]"], r"generators.0.operands: empty range \[5, 3\]"),
        (
            ["bases.values=[2,4,10]", "bases.distribution=[1,2,3,4]"],
            r"distribution has 4 entries; allowed: 2 \(\[first, last\].*one per base \(3\)",
        ),
        (["bases.values=[2,2]"], "repeat a base"),
        (
            ["overflow_strategy=wrap"],
            "overflow_strategy: Input should be 'increase_base' or 'error'",
        ),
        (
            ["generators.0.operations=+x"],
            r"operations '\+x' must be distinct characters from "
            r"'\+-\*/%\^' \(unknown: 'x'\)",
        ),
        (["generators.0.speed=3"], "generators.0.speed: unknown field; allowed: weight, ood, type"),
        (["colour=red"], "colour: unknown field; allowed: name, generators, bases"),
        (["generators.0.digits=[0,4]"], r"digits \[0, 4\] must lie within \[1, 2000\]"),
        (["generators.0.ood={digits: [5, 1]}"], r"ood overrides: digits: empty range \[5, 1\]"),
        (["generators.0.ood={type: copy}"], r"ood may not change \['type'\]"),
        (["generators=[]"], "generators: List should have at least 1 item"),
        (["generators.0.weight=0"], "weight: Input should be greater than 0"),
        (["max_length=2"], "max_length: Input should be greater than or equal to 4"),
        (["splits.val=0.7"], "splits.val: Input should be less than 0.5"),
        (
            ["generators=[{type: copy, length: [1, 100]}]"],
            "needs inputs of 102 tokens, more than max_length 64",
        ),
        (
            ["generators=[{type: factorize, max_number: 1}]"],
            "max_number: Input should be greater than or equal to 2",
        ),
        (
            ["generators=[{type: factorize, digits: [1, 12]}]"],
            r"digits \[1, 12\] must lie within \[1, 9\]",
        ),
        (
            ["generators=[{type: recall, items: [1, 3]}]"],
            r"items \[1, 3\] must lie within \[2, 1000\]",
        ),
        (
            ["generators=[{type: arithmetic, operations: '^', operands: [2, 3]}]"],
            "at most 2 operands",
        ),
        (["max_length"], "override 'max_length' must look like key=value"),
        (["output_base=binary"], "output_base"),
        (
            [
                "generators.0.operations='*'",
                "generators.0.operands=[3,3]",
                "generators.0.digits=2000",
            ],
            "results could reach 6000 decimal digits .* at most 4000",
        ),
        (
            [
                "generators.0.operations='+^'",
                "generators.0.max_exponent=16",
                "generators.0.digits=300",
            ],
            "results could reach 4802 decimal digits",
        ),
        (["generators.0.ood.digits=[3000, 3000]"], "ood overrides: digits"),
        (
            ["generators.0.max_number=" + "9" * 5000],
            "override '.*' \\(5024 characters\\): a number with more than 4300 digits",
        ),
        (["generators.0.operations=*"], "the value is not YAML .*quote it"),
        (["generators.7.digits=3"], "override 'generators.7.digits=3': list index out of range"),
    ],
)
def test_bad_schemes_name_the_field_and_allowed_values(overrides, message):
    with pytest.raises(SchemeError, match=message):
        load_scheme(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(SchemeError, match="scheme file .*missing.yaml not found"):
        load_scheme(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("generators: [\n")
    with pytest.raises(SchemeError, match="broken.yaml: not a readable YAML scheme: line 2"):
        load_scheme(broken)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\x00\xff")
    with pytest.raises(SchemeError, match="binary.yaml is not UTF-8 text"):
        load_scheme(binary)
    with pytest.raises(SchemeError, match="is a directory, not a file"):
        load_scheme(tmp_path)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(SchemeError, match="must be a mapping of scheme fields, got list"):
        load_scheme(listed)


def test_overrides_and_seed_forms():
    scheme = load_scheme(
        None, ["max_length=128", "generators.0.digits=[1,5]", "output_base=[input]"]
    )
    assert scheme.max_length == 128 and scheme.generators[0].digits == (1, 5)
    assert scheme.output_base == "input"
    assert load_scheme(None, ["generators.0.operands=3"]).generators[0].operands == (3, 3)


def test_geometric_distribution():
    p = geometric_weights(4, [1, 10])
    assert p[-1] / p[0] == pytest.approx(10)
    assert p[1] / p[0] == pytest.approx(p[2] / p[1]) == pytest.approx(p[3] / p[2])
    assert geometric_weights(3, None) == pytest.approx([1 / 3] * 3)
    assert geometric_weights(3, [1, 1, 2]) == pytest.approx([0.25, 0.25, 0.5])
