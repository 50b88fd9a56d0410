import json

import pytest
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.tasks import vocab


def test_digits_are_their_own_ids_and_specials_follow():
    assert all(vocab.TOKEN_IDS[str(d)] == d for d in range(256))
    specials = [vocab.TOKEN_IDS[name] for name in vocab.SPECIAL_TOKENS]
    assert specials == list(range(256, 256 + len(vocab.SPECIAL_TOKENS)))
    assert vocab.VOCAB_SIZE == 256 + len(vocab.SPECIAL_TOKENS) == len(set(vocab.TOKEN_IDS.values()))
    for name in [
        "@",
        ".",
        "!",
        "blank",
        "+",
        "-",
        "*",
        "/",
        "%",
        "=",
        "^",
        "output:base",
        "task:factorise",
        "probe",
        "start_decode",
        "pad",
        "eos",
    ]:
        assert vocab.token_id(name) >= 256


def test_unknown_tokens_are_clear_errors():
    with pytest.raises(KeyError, match="unknown token 'sqrt'.*'@'"):
        vocab.token_id("sqrt")
    with pytest.raises(KeyError, match="ids are 0..275"):
        vocab.token_name(9999)


def test_cli_vocab_json_is_the_table():
    result = CliRunner().invoke(app, ["vocab", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == vocab.TOKEN_IDS
