"""A run record's next action says each sentence once, however its parts were assembled."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_checks.runbooks.verdict import Verdict, said_once

WORDS = st.text(alphabet="abcdefgh XYZ-`/", min_size=1, max_size=20).map(lambda t: " ".join(t.split())).filter(bool)


@settings(max_examples=300)
@given(pool=st.lists(WORDS, min_size=1, max_size=6, unique_by=str.lower), picks=st.lists(st.integers(0, 5),
       min_size=1, max_size=12), breaks=st.lists(st.sampled_from(["; ", ". "]), min_size=12, max_size=12))
def test_every_sentence_is_said_once_in_the_order_first_said(pool, picks, breaks):
    """Sentences drawn with repeats, joined by `; ` or `. `: what remains is each distinct sentence once, first
    occurrence first, and nothing that was not said."""
    said = [pool[i % len(pool)] for i in picks]
    text = "".join(s + (breaks[n] if n < len(said) - 1 else "") for n, s in enumerate(said))
    expected: list[str] = []
    for sentence in said:  # the oracle: first occurrences, compared as a reader would (case and spacing aside)
        if sentence.lower() not in [e.lower() for e in expected]:
            expected.append(sentence)
    remaining = [p.rstrip(".; ") for p in re.split(r"(?<=[.;])\s+", said_once(text))]
    assert remaining == expected


def test_a_next_action_without_repeats_is_kept_byte_for_byte():
    """Nothing said twice: the text is untouched (spacing and punctuation included)."""
    text = "dry run: would roll back popularity;  run it with --execute. Then look at the probe."
    assert said_once(text) == text


def test_the_verdict_drops_a_sentence_its_parts_repeat():
    """A remedy summary that repeats the diagnosis, as assembled into the verdict's next action."""
    diagnosis = "the manifest names a missing blob; roll popularity back"
    verdict = Verdict("action-required", f"{diagnosis}; {diagnosis}; run with --execute")
    assert verdict.next_action == "the manifest names a missing blob; roll popularity back; run with --execute"
    assert tuple(verdict) == ("action-required", verdict.next_action)
