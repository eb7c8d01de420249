"""The repository's copy of the payload schema is the contract's, byte for byte."""

from __future__ import annotations

import pytest

from tests.reference_metrics import SCHEMA_PATH, SPEC_SCHEMA_PATH


def test_the_schema_copy_equals_the_contract() -> None:
    if not SPEC_SCHEMA_PATH.exists():
        pytest.skip(f"the contract is not beside this clone ({SPEC_SCHEMA_PATH})")
    assert SCHEMA_PATH.read_bytes() == SPEC_SCHEMA_PATH.read_bytes(), (
        f"{SCHEMA_PATH} differs from the contract: copy {SPEC_SCHEMA_PATH} over it"
    )
