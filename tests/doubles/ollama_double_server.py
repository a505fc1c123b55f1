"""The Ollama-protocol double (tests/doubles/ollama_double.py) in a process of its own.

``python -m tests.doubles.ollama_double_server CHAT_S [EMBED_S]`` serves the double with
``CHAT_S`` seconds per ``/api/chat`` call and ``EMBED_S`` per ``/api/embed`` call (default:
the same as chat), prints one JSON line ``{"url": ...}``, then answers stdin commands with one
JSON line each: ``calls`` -> the counters, ``reset`` -> zero them; EOF ends it. Its own process
keeps its event loop off the caller's CPU time slice (the GIL), as a real Ollama server would be.

A real Ollama answers an embedding of a chunk in milliseconds and a chat completion in seconds:
the benchmarks give the two their own latencies.
"""

from __future__ import annotations

import json
import sys

from tests.doubles.ollama_double import ollama_double


def main(argv: list[str]) -> int:
    chat_s = float(argv[0]) if argv else 0.2
    embed_s = float(argv[1]) if len(argv) > 1 else chat_s
    with ollama_double(latency_s=chat_s, embed_latency_s=embed_s, embedding_dim=16) as d:
        print(json.dumps({"url": d.url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "reset":
                d.calls.clear()
                d.max_in_flight = 0
                d.max_embed_in_flight = 0
            counters = {**dict(d.calls), "max_in_flight": d.max_in_flight}
            print(
                json.dumps({**counters, "max_embed_in_flight": d.max_embed_in_flight}), flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
