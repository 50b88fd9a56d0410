"""The mathematics_dataset benchmark poses its questions right: every template is read back into
plain notation whose value (the independent reference evaluator) is the generator's answer."""

import random
import sys
from pathlib import Path

import pytest
from reference import evaluate

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from mathematics_dataset import ADD, BETWEEN, ENTROPY, MUL, SUB, question, translate  # noqa: E402

from th1nker.tasks.notation import parse_problem  # noqa: E402


@pytest.mark.parametrize(("module", "split"), list(ENTROPY))
def test_every_question_translates_to_its_answer(module, split):
    rng = random.Random(0)
    seen = set()
    for _ in range(2000):
        text, answer = question(rng, module, split)
        plain = translate(text)
        assert evaluate(plain) == answer, (text, plain)
        assert parse_problem(plain)[0].result[0] == answer  # and th1nker reads it alike
        seen.add(text.rstrip(".?").split(" ")[0])
    assert len(seen) >= 4  # many templates were drawn


def test_every_template_is_read():
    for template in ADD + SUB + BETWEEN + MUL:
        text = template.format(p="-12.5", q="3")
        assert translate(text) in ("-12.5+3", "-12.5-3", "3--12.5", "-12.5*3"), template
    with pytest.raises(ValueError, match="no template reads"):
        translate("What is (2 + 3) * 4?")
