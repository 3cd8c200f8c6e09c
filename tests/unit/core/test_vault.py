from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from core.vault import Vault, hash_api_key, new_master_key


def test_round_trip_and_ciphertext_hides_the_secret() -> None:
    vault = Vault(new_master_key())
    sealed = vault.encrypt_json({"apiv3_key": "s3cret-value"}, context="channel_account:a")
    assert "s3cret-value" not in sealed
    assert vault.decrypt_json(sealed, context="channel_account:a") == {"apiv3_key": "s3cret-value"}


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    vault = Vault(new_master_key())
    sealed = vault.encrypt(b"secret", context="channel_account:a")
    with pytest.raises(InvalidTag):
        vault.decrypt(sealed, context="channel_account:b")


def test_another_master_key_cannot_decrypt() -> None:
    sealed = Vault(new_master_key()).encrypt(b"secret", context="x")
    with pytest.raises(InvalidTag):
        Vault(new_master_key()).decrypt(sealed, context="x")


@pytest.mark.parametrize("bad", ["", "not base64!", "c2hvcnQ="])
def test_master_key_must_be_32_bytes_of_base64(bad: str) -> None:
    with pytest.raises(ValueError, match="PAYFRONT_MASTER_KEY"):
        Vault(bad)


def test_api_keys_are_stored_as_sha256_hex() -> None:
    expected = "4b4090ccee1e713c3d411b96a4226b90bd0f0deb34e02d19475a951316fd04ee"
    assert hash_api_key("sk_test_abc") == expected
