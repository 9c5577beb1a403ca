"""Benchmark what the compiled tree walk costs a process: numba's import, compile, cache load.

In fresh child processes, `--runs` times each:

1. import: `python -X importtime -c "import fraudops.scoring.compiled"`, the cumulative
   import time of numba and of the kernel module (numpy, already loaded by any model, apart);
2. cold: the XGBoost kernels' first calls (walk_one, walk_many and reason_orders on float32
   leaves, as FastModel makes them when it loads a booster) with an empty NUMBA_CACHE_DIR:
   a compile;
3. warm: the same with the cache the cold run left: a load from disk;
4. model load: a FastModel of an XGBoost booster of the default shape (300 trees of depth
   6, 58 features, fitted on random data) built with the numpy walk, with the kernel loaded
   in a thread as the service does (the constructor's return, then the wait until the
   kernel serves) and with the kernel loaded before returning, warm cache, numba not yet
   imported in each case.

Also checks that importing the scoring service does not import numba (the kernel is
imported where a tree model is built). Prints medians, records benchmarks/results/kernel_load.json.

    .venv/bin/python benchmarks/bench_kernel_load.py [--runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import harness

FIRST_CALLS = """
import json, time
import numpy as np
began = time.perf_counter()
from fraudops.scoring import compiled
imported = time.perf_counter()
width, slots = 58, np.array([[0, 1], [0, 0], [0, 0]], dtype=np.intp)
tree = (slots, np.zeros(2, np.float32), np.zeros(2), np.zeros(2, np.float32),
        np.zeros(1, np.intp), 1, False)
compiled.walk_one(np.zeros(width), *tree, np.zeros(1, np.float32), np.zeros(width))
compiled.walk_many(np.zeros((1, width)), *tree, np.zeros((1, 2), np.float32),
                   np.zeros((1, width)))
compiled.reason_orders(np.zeros((1, width)), np.zeros((1, 1), np.intp), np.zeros(1, np.intp))
done = time.perf_counter()
stats = [compiled.walk_one.stats, compiled.walk_many.stats, compiled.reason_orders.stats]
print(json.dumps({
    "import_ms": (imported - began) * 1000, "first_calls_ms": (done - imported) * 1000,
    "cache_hits": sum(sum(s.cache_hits.values()) for s in stats),
    "cache_misses": sum(sum(s.cache_misses.values()) for s in stats),
}))
"""


MODEL_LOAD = """
import json, sys, time, types
import numpy as np
from xgboost import XGBClassifier
from fraudops.scoring.model import FastModel
rng = np.random.default_rng(7)
features = rng.normal(size=(4000, 58))
labels = (features[:, 0] + rng.normal(size=4000) > 1.5).astype(int)
estimator = XGBClassifier(n_estimators=300, max_depth=6, n_jobs=1, random_state=7)
estimator.fit(features, labels)
# FastModel reads only these two of a ModelBundle.
bundle = types.SimpleNamespace(estimator=estimator, feature_names=tuple(map(str, range(58))))
tree_walk = sys.argv[1]
began = time.perf_counter()
model = FastModel(bundle, tree_walk=tree_walk)
returned = time.perf_counter()
model.wait_compiled()
serving = time.perf_counter()
print(json.dumps({"returned_ms": (returned - began) * 1000,
                  "kernel_serving_ms": (serving - began) * 1000 if model.compiled else None}))
"""


def model_load(cache_dir: str, tree_walk: str) -> dict[str, Any]:
    """A fresh interpreter's FastModel build of a 300-tree booster with `tree_walk`."""
    return measured_in_child(MODEL_LOAD, tree_walk, cache_dir=cache_dir)


def measured_in_child(program: str, *args: str, cache_dir: str) -> dict[str, Any]:
    """The JSON line a program prints last, run in a fresh interpreter caching in `cache_dir`."""
    completed = subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NUMBA_CACHE_DIR": cache_dir},
    )
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def cumulative_import_ms(module: str) -> dict[str, float]:
    """Cumulative import milliseconds of numba and the kernel module in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import numpy; import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in {"numba", module}:
            found[parts[2]] = int(parts[1]) / 1000.0
    return found


def first_calls(cache_dir: str) -> dict[str, Any]:
    """The kernels' first calls in a fresh interpreter caching in `cache_dir`."""
    return measured_in_child(FIRST_CALLS, cache_dir=cache_dir)


def service_imports_numba() -> bool:
    """Whether `import fraudops.scoring.service` (what the API loads) brings numba in."""
    program = "import sys, fraudops.scoring.service; print('numba' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    return completed.stdout.strip().splitlines()[-1] == "True"


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 1)


def main() -> None:
    """Measure, print the medians and record them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    imports = [cumulative_import_ms("fraudops.scoring.compiled") for _ in range(args.runs)]
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    loads: dict[str, list[dict[str, Any]]] = {"numpy": [], "background": [], "compiled": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache_dir:
            cold.append(first_calls(cache_dir))
            warm.append(first_calls(cache_dir))
            for tree_walk, runs in loads.items():
                runs.append(model_load(cache_dir, tree_walk))
    result = {
        "command": f"python benchmarks/bench_kernel_load.py --runs {args.runs}",
        "runs": args.runs,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "service_import_loads_numba": service_imports_numba(),
        "median_ms": {
            "import_numba": round(statistics.median(i["numba"] for i in imports), 1),
            "import_kernel_module": round(
                statistics.median(i["fraudops.scoring.compiled"] for i in imports), 1
            ),
            "cold_first_calls": median(cold, "first_calls_ms"),
            "warm_first_calls": median(warm, "first_calls_ms"),
            "cold_import_in_process": median(cold, "import_ms"),
            "warm_import_in_process": median(warm, "import_ms"),
            "model_numpy_walk_build": median(loads["numpy"], "returned_ms"),
            "model_background_build_returns": median(loads["background"], "returned_ms"),
            "model_background_kernel_serving": median(loads["background"], "kernel_serving_ms"),
            "model_compiled_build": median(loads["compiled"], "returned_ms"),
        },
        "cold_cache": {"hits": cold[0]["cache_hits"], "misses": cold[0]["cache_misses"]},
        "warm_cache": {"hits": warm[0]["cache_hits"], "misses": warm[0]["cache_misses"]},
        "imports_ms": imports,
        "cold_runs": cold,
        "warm_runs": warm,
        "model_loads": loads,
    }
    figures = result["median_ms"]
    print(f"command                   {result['command']}")
    print(f"import numba              {figures['import_numba']:7.1f} ms (cumulative, importtime)")
    print(f"import kernel module      {figures['import_kernel_module']:7.1f} ms (numba included)")
    print(f"first calls, cold cache   {figures['cold_first_calls']:7.1f} ms "
          f"(compiles: {result['cold_cache']})")  # fmt: skip
    print(f"first calls, warm cache   {figures['warm_first_calls']:7.1f} ms "
          f"(loads: {result['warm_cache']})")  # fmt: skip
    print(f"300-tree model, numpy     {figures['model_numpy_walk_build']:7.1f} ms to build")
    print(
        f"  kernel in a thread      {figures['model_background_build_returns']:7.1f} ms to "
        f"return, kernel serving after {figures['model_background_kernel_serving']:.1f} ms"
    )
    print(f"  kernel before return    {figures['model_compiled_build']:7.1f} ms (warm cache)")
    print(f"service import loads numba {result['service_import_loads_numba']}")
    print(f"load average              {result['load_average'][0]} before, "
          f"{result['load_average'][1]} after ({os.cpu_count()} cores)")  # fmt: skip
    if not args.no_save:
        print(f"recorded                  {harness.record('kernel_load', result)}")


if __name__ == "__main__":
    main()
