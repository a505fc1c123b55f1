"""How a process reaches Temporal: one target read from the Settings by everyone.

The API's gateway (services/repositories.py, POST /repos/{id}/index), every indexer
(indexing/worker.py) and the deployment's poller check (roles/orchestrator_indexer
files/indexer_pollers.py) build their client from :meth:`TemporalTarget.from_settings`, so
they dial the same address and namespace and use the same task queue and TLS files: the
rendered constants of settings.py (the inventory's orchestrator_temporal_*), overridable by
SHIELD_TEMPORAL_* in the environment. TLS is given by file paths only; the key is read here,
at connect time, and never crosses a command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shield_orchestrator.errors import ConfigError
from shield_orchestrator.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.service import TLSConfig


@dataclass(frozen=True, slots=True)
class TemporalTarget:
    """Where the indexing workflows run: address, namespace, task queue and mTLS files.

    The TLS fields are paths ("" = not used): a client certificate and key (mutual TLS to
    an existing cluster), the CA of the server's certificate (empty: the system CAs) and the
    name in the server's certificate when it differs from the address.
    """

    address: str
    namespace: str
    task_queue: str
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    tls_server_name: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> TemporalTarget:
        return cls(
            settings.temporal_address, settings.temporal_namespace, settings.temporal_task_queue,
            settings.temporal_tls_cert_file, settings.temporal_tls_key_file,
            settings.temporal_tls_ca_file, settings.temporal_tls_server_name,
        )  # fmt: skip

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_cert_file or self.tls_ca_file or self.tls_server_name)

    def tls(self) -> TLSConfig | None:
        """The SDK's TLS config read from the files; None (plaintext) when no TLS is set.

        Raises ConfigError when only one of certificate and key is given, OSError when a
        file cannot be read (both name the file).
        """
        from temporalio.service import TLSConfig

        if not self.uses_tls:
            return None
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError(
                "SHIELD_TEMPORAL_TLS_KEY_FILE", self.tls_key_file,
                "The client certificate and key go together (mutual TLS): set both or neither.",
            )  # fmt: skip

        def read(path: str) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return TLSConfig(
            server_root_ca_cert=read(self.tls_ca_file),
            domain=self.tls_server_name or None,
            client_cert=read(self.tls_cert_file),
            client_private_key=read(self.tls_key_file),
        )


async def connect(target: TemporalTarget) -> Client:
    """A connected client of ``target`` (plaintext unless TLS files are set)."""
    from temporalio.client import Client

    return await Client.connect(target.address, namespace=target.namespace,
                                tls=target.tls() or False)  # fmt: skip
