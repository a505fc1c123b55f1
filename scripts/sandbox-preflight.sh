#!/usr/bin/env bash
# scripts/sandbox-preflight.sh: what `make sandbox` checks before it installs, builds or deploys
# anything. Each refusal is one line naming the problem and the fix, on stderr; exit 2.
#   OLLAMA            empty (offline engine) or an Ollama URL http(s)://HOST[:PORT][/]
#   TIKTOKEN_FILE     required with OLLAMA (the lightrag engine never downloads its tokenizer):
#                     a readable, non-empty file
#   SANDBOX_API_PORT  the machine's loopback port the sandbox API is published on (default
#                     8000): a number in 1-65535, free unless the sandbox host already has it
#   podman            on PATH, or installable: apt-get and root (harness/setup.sh installs it)
set -euo pipefail

OLLAMA=${OLLAMA:-}
TIKTOKEN_FILE=${TIKTOKEN_FILE:-}
PORT=${SANDBOX_API_PORT:-8000}
NAME=shield-sandbox

refuse() {
  printf 'sandbox: %s\n' "$*" >&2
  exit 2
}

if [ -n "$OLLAMA" ]; then
  [[ $OLLAMA =~ ^https?://[A-Za-z0-9._-]+(:[0-9]{1,5})?/?$ ]] ||
    refuse "OLLAMA=$OLLAMA is not an Ollama URL: give OLLAMA=http://HOST:11434, or leave it empty for the offline engine"
  [ -n "$TIKTOKEN_FILE" ] ||
    refuse "OLLAMA is set but TIKTOKEN_FILE is not: the lightrag engine needs its tokenizer file, give TIKTOKEN_FILE=path/o200k_base.tiktoken (README.md, 'Tokenizer for the lightrag engine')"
fi
if [ -n "$TIKTOKEN_FILE" ] && ! { [ -f "$TIKTOKEN_FILE" ] && [ -r "$TIKTOKEN_FILE" ] && [ -s "$TIKTOKEN_FILE" ]; }; then
  refuse "TIKTOKEN_FILE=$TIKTOKEN_FILE is not a readable, non-empty file: give the path of o200k_base.tiktoken on this machine"
fi

if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  refuse "SANDBOX_API_PORT=$PORT is not a TCP port: give a number in 1-65535, e.g. make sandbox SANDBOX_API_PORT=8001"
fi

# The port: ours when the sandbox host already publishes it, otherwise it must be free.
published=
if command -v podman >/dev/null && podman container exists "$NAME"; then
  published=$(podman container inspect -f '{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostIP}}:{{.HostPort}} {{end}}{{end}}' "$NAME")
fi
case " $published " in
  *" 127.0.0.1:$PORT "*) ;;
  *)
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      refuse "SANDBOX_API_PORT=$PORT: 127.0.0.1:$PORT is taken by another program on this machine: stop it, or choose a free port, e.g. make sandbox SANDBOX_API_PORT=$((PORT == 65535 ? 8001 : PORT + 1))"
    fi
    ;;
esac

if ! command -v podman >/dev/null; then
  command -v apt-get >/dev/null ||
    refuse "podman is missing and there is no apt-get to install it: install podman and runc by hand, then run make sandbox again"
  [ "$(id -u)" -eq 0 ] ||
    refuse "podman is missing: run make sandbox as root (it installs podman with apt-get), or 'sudo apt-get install podman runc' first"
fi
