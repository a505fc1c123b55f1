"""Draws line plots from a JSON list on stdin (run inside the bench venv ``plot``).

Each item: {"path", "title", "x_label", "y_label", "series": {name: [[x, y], ...]}}.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    for item in json.load(sys.stdin):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for name, points in item["series"].items():
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_title(item["title"])
        ax.set_xlabel(item["x_label"])
        ax.set_ylabel(item["y_label"])
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(item["path"])
        plt.close(fig)


if __name__ == "__main__":
    main()
