"""Keys for the stored text (gateway/crypto.py): a round trip; rotation (an old key listed second still
decrypts, and once re-encrypted the old key can go); a wrong key is a `DataKeyError` naming the keys, never the
key itself; bad key material and production with AUDIT_TEXT but no key fail when Settings are built; no key
in development keeps plain text and says so in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from errors import ConfigError, DataKeyError
from gateway import crypto
from gateway.crypto import Cipher, build_cipher, is_token, key_id, new_key, parse_keys
from settings import load_settings
from tests.conftest import make_settings

OLD, NEW, OTHER = new_key(), new_key(), new_key()
PROMPT = "Need a roof inspection at 12 Elm St, Troy"


def test_round_trip_and_tokens_hide_the_text() -> None:
    cipher = Cipher([NEW.encode()])
    token = cipher.encrypt(PROMPT)
    assert PROMPT not in token and "Troy" not in token and is_token(token)
    assert cipher.decrypt(token) == PROMPT
    assert cipher.encrypt(PROMPT) != token  # a fresh IV each time: equal texts are not linkable
    assert not is_token('{"description": "x"}') and not is_token(PROMPT)


def test_rotation_old_key_second_decrypts_and_rotate_moves_to_the_new_key() -> None:
    old_token = Cipher([OLD.encode()]).encrypt(PROMPT)
    both = Cipher([NEW.encode(), OLD.encode()])
    assert both.decrypt(old_token) == PROMPT  # the old key, listed after the new one, still opens it
    rotated = both.rotate(old_token)
    assert Cipher([NEW.encode()]).decrypt(rotated) == PROMPT  # the old key can now be dropped
    with pytest.raises(DataKeyError):
        Cipher([OLD.encode()]).decrypt(rotated)
    assert both.current == key_id(NEW.encode())


def test_a_wrong_key_is_a_clear_error_that_never_shows_a_key() -> None:
    token = Cipher([OLD.encode()]).encrypt(PROMPT)
    with pytest.raises(DataKeyError) as err:
        Cipher([OTHER.encode()]).decrypt(token)
    message = err.value.message
    assert key_id(OTHER.encode()) in message and "DATA_ENCRYPTION_KEY" in message
    assert OTHER not in message and OLD not in message
    with pytest.raises(DataKeyError):
        Cipher([OTHER.encode()]).rotate(token)
    with pytest.raises(DataKeyError):
        Cipher([OLD.encode()]).decrypt(token[:-4] + "AAAA")  # altered: authenticated encryption refuses it


def test_parse_keys_reads_lists_and_files_and_names_a_bad_key_without_echoing_it() -> None:
    assert parse_keys(f" {NEW} , {OLD} ") == [NEW.encode(), OLD.encode()]
    assert parse_keys(f"# newest first\n{NEW}\n\n{OLD}  # kept for old entries\n{NEW}\n") == [NEW.encode(),
                                                                                                 OLD.encode()]
    with pytest.raises(ValueError, match="key 2 is not a Fernet key") as err:
        parse_keys(f"{NEW},not-a-key-at-all")
    assert "not-a-key-at-all" not in str(err.value)


def test_settings_refuse_bad_key_material_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"DATA_ENCRYPTION_KEY: .*key 1 is not a Fernet key") as err:
        load_settings(_env_file=None, data_encryption_key="hunter2")
    assert "hunter2" not in err.value.message
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEY_FILE: cannot read it"):
        load_settings(_env_file=None, data_encryption_key_file=tmp_path / "missing.keys")
    bad = tmp_path / "bad.keys"
    bad.write_text(f"{NEW}\nsecond-line-is-no-key\n")
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEY_FILE: key 2 is not a Fernet key"):
        load_settings(_env_file=None, data_encryption_key_file=bad)
    empty = tmp_path / "empty.keys"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="holds no key"):
        load_settings(_env_file=None, data_encryption_key_file=empty)


def test_keys_from_the_variable_come_first_then_the_file(tmp_path: Path) -> None:
    keys = tmp_path / "data.keys"
    keys.write_text(f"{OLD}\n{NEW}\n")
    settings = make_settings(data_encryption_key=NEW, data_encryption_key_file=keys)
    assert settings.data_keys == [NEW.encode(), OLD.encode()]
    cipher = build_cipher(settings)
    assert cipher is not None and cipher.current == key_id(NEW.encode()) and len(cipher.key_ids) == 2


def test_production_refuses_audit_text_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="AUDIT_TEXT=true in production needs DATA_ENCRYPTION_KEY"):
        make_settings(skymarket_env="production", audit_text=True)
    assert make_settings(skymarket_env="production", audit_text=True, data_encryption_key=NEW).audit_text
    assert make_settings(skymarket_env="production", audit_text=False).data_keys == []  # no text: no key needed
    assert make_settings(skymarket_env="development", audit_text=True).data_keys == []


def test_no_key_in_development_is_plain_text_and_said_at_start(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_announced", set())
    caplog.set_level(logging.INFO, logger="skymarket.crypto")
    assert build_cipher(make_settings(audit_text=True)) is None
    assert build_cipher(make_settings()) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "plain text" in warnings[0]  # once per process, not once per store
    assert build_cipher(make_settings(data_encryption_key=NEW)) is not None
    assert any(key_id(NEW.encode()) in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
