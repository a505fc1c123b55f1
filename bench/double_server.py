"""The Ollama-protocol double (tests/doubles/ollama_double.py) in a process of its own.

``python -m bench.double_server LATENCY_S`` prints one JSON line ``{"url": ...}``, then
answers stdin commands with one JSON line each: ``calls`` -> the counters, ``reset`` -> zero
them; EOF ends it. Its own process keeps its event loop off the benchmark's CPU time slice
(the GIL), as a real Ollama server would be.
"""

from __future__ import annotations

import json
import sys

from tests.doubles.ollama_double import ollama_double


def main() -> int:
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
    with ollama_double(latency_s=latency, embed_latency_s=latency, embedding_dim=16) as d:
        print(json.dumps({"url": d.url}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "reset":
                d.calls.clear()
                d.max_in_flight = 0
            print(json.dumps({**dict(d.calls), "max_in_flight": d.max_in_flight}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
