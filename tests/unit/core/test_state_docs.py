from __future__ import annotations

from payfront.statedocs import TARGET, render


def test_docs_states_md_is_generated_from_the_tables() -> None:
    assert TARGET.read_text() == render(), "run: python -m payfront.statedocs"
