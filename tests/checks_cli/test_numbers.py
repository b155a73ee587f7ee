"""The one number parser of the command lines (recsys_checks.cli.numbers): each option's range, refused in one line
(argparse prints it and exits 2)."""

from __future__ import annotations

import argparse
import re

import pytest

from recsys_checks.cli import numbers


@pytest.mark.parametrize(("parse", "good", "bad"), [
    (numbers.positive, {"1": 1, " 7 ": 7, "600": 600}, ["0", "-1", "1.5", "x", "", "٣"]),
    (numbers.count(1, 64), {"1": 1, "64": 64}, ["0", "65", "+2", "2e1"]),
    (numbers.fraction, {"0": 0.0, "0.95": 0.95, "1": 1.0}, ["1.01", "-0.1", "nan", "inf", "x"]),
    (numbers.non_negative, {"0": 0.0, "250": 250.0, "0.5": 0.5}, ["-1", "inf", "nan", ""]),
    (numbers.seconds, {"0": 0.0, "30": 30.0, "86400": 86400.0}, ["86401", "-1", "nan"]),
])
def test_each_range_takes_its_numbers_and_refuses_the_rest(parse, good, bad):
    assert {text: parse(text) for text in good} == good
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="^" + re.escape(f"{text!r} is not ")):
            parse(text)


def test_the_cli_refuses_a_bad_number_with_exit_2(capsys):
    from recsys_checks.cli.commands import build_parser

    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["alerts", "serve", "--out", "x", "--workers", "0"])
    assert stopped.value.code == 2 and "'0' is not a whole number from 1 to 64" in capsys.readouterr().err
