"""Recompute the tables of a model's scaling JSON from its stored per-problem models (parameters
and bootstrap refits), without refitting anything; the JSON and the manifest's entry for it
(sha256, bytes) are replaced as one unit, the model file is left as it is. Use after a change to
how ProblemModel turns parameters into predictions or intervals.

    PYTHONPATH=. python scripts/retabulate_scaling.py [MODEL]   # default: the shipped model
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from planner.core.files import atomic_paths
from planner.predict.modelio import DEFAULT_MODEL, load_model, load_scaling, manifest_path, scaling_file
from planner.predict.scaling import ProblemModel
from planner.predict.scalingfit import tabulate


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL
    _, manifest = load_model(path)
    doc = load_scaling(path, manifest)
    if doc is None:
        sys.exit(f"{path} has no scaling JSON")
    for entry in doc["sets"]:
        entry["table"] = tabulate(ProblemModel.from_dict(entry["model"]), doc["table_n"])
        print(f"retabulated {entry['source']}", file=sys.stderr)
    target, data, info = scaling_file(doc, path)
    manifest["extra"]["scaling"] = {**manifest["extra"]["scaling"], **info}
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    with atomic_paths(manifest_path(path), target) as (manifest_tmp, scaling_tmp):
        manifest_tmp.write_text(text, encoding="utf-8")
        scaling_tmp.write_bytes(data)


if __name__ == "__main__":
    main()
