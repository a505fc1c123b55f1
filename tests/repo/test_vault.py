"""The production inventory's secrets: the example vault is plaintext that names every vault_*
variable the inventory reads (so `cp vault.yml.example vault.yml` and edit works), and any real
vault.yml in an inventory is encrypted (a plaintext one is never committed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "inventories" / "production"
EXAMPLE = PRODUCTION / "group_vars" / "all" / "vault.yml.example"


def test_the_example_is_plaintext_yaml_naming_every_vault_variable() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert not text.startswith("$ANSIBLE_VAULT")
    example = yaml.safe_load(text)
    read = set()
    for path in PRODUCTION.rglob("*.yml"):
        read |= set(re.findall(r"\b(vault_[a-z0-9_]+)\b", path.read_text(encoding="utf-8")))
    assert read, "the production inventory reads no vault_* variable"
    assert read == set(example), (sorted(read - set(example)), sorted(set(example) - read))


def test_the_example_secrets_are_placeholders() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for name, value in example.items():
        values = value if isinstance(value, list) else [value]
        assert all(v == "" or str(v).startswith("CHANGE-ME") for v in values), name


def plaintext_vaults(inventories: Path) -> list[Path]:
    """Files named vault.yml / vault.yaml under ``inventories`` that are not vault-encrypted."""
    return sorted(
        p
        for p in inventories.rglob("vault.y*ml")
        if p.is_file() and not p.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    )


def test_every_vault_file_in_an_inventory_is_encrypted() -> None:
    assert plaintext_vaults(REPO / "inventories") == []


def test_the_guard_finds_a_plaintext_vault(tmp_path: Path) -> None:
    (tmp_path / "prod" / "group_vars" / "all").mkdir(parents=True)
    plain = tmp_path / "prod" / "group_vars" / "all" / "vault.yml"
    plain.write_text("vault_redis_password: hunter2hunter2\n")
    sealed = tmp_path / "vault.yaml"
    sealed.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    assert plaintext_vaults(tmp_path) == [plain]
