"""The podman connection of containers.podman, with pipelining: one ``podman exec`` per module.

containers.podman's ``podman`` connection declares no pipelining, because ``podman exec``
without ``--interactive`` gives the command no standard input. Without pipelining every module
costs four ``podman exec`` calls (make the temporary directory, make the module executable,
run it, remove the directory); here it is one, ``podman exec --interactive`` with the module on
standard input (harness/README.md, "The connection", has the measurements).
File transfers (copy, template) are the parent's: a copy into the container's mounted root.
Only the harness's hosts use it (``ansible_connection: podman_pipelined`` in the sandbox
inventory and in the molecule scenarios); found through ``connection_plugins`` in ansible.cfg
and ``ANSIBLE_CONNECTION_PLUGINS`` in harness/env.sh.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.containers.podman.plugins.connection.podman import (  # type: ignore[import-not-found]
    Connection as PodmanConnection,
)

DOCUMENTATION = r"""
name: podman_pipelined
short_description: Run modules in a podman container, one podman exec per module
description:
  - The connection of containers.podman.podman, with pipelining on (podman exec --interactive,
    the module on standard input).
author: shield-orchestrator maintainers
options:
  remote_addr:
    description: The container's name or id.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: The user in the container (the image's default when unset).
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Arguments put before every podman subcommand.
    default: ""
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman binary.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Send modules on standard input instead of copying them into the container.
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""


class Connection(PodmanConnection):  # type: ignore[misc]
    """containers.podman.podman, with ``exec --interactive`` when a command reads standard input."""

    transport = "podman_pipelined"
    has_pipelining = True

    def _podman(
        self,
        cmd: str | list[str],
        cmd_args: list[Any] | None = None,
        in_data: bytes | None = None,
        use_container_id: bool = True,
    ) -> tuple[int, bytes, bytes]:
        if in_data is not None and isinstance(cmd, list) and cmd[:1] == ["exec"]:
            cmd = ["exec", "--interactive", *cmd[1:]]
        result: tuple[int, bytes, bytes] = super()._podman(cmd, cmd_args, in_data, use_container_id)
        return result
