"""Runs one DAG once with ``dag.test()`` in Airflow's own environment and prints how it went.

Run by the tests with Airflow's interpreter: ``python drive.py DAG_ID [CONF_JSON]``; the last line
printed is ``{"state": ..., "tasks": [[task_id, map_index, state], ...]}``. Settings come from
the environment (``AIRFLOW_HOME``, ``GPUBROKER_*``), as in a deployment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from airflow.dag_processing.dagbag import BundleDagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


def main() -> int:
    dag_id = sys.argv[1]
    conf = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)  # as Airflow reads the bundle: dags/ on sys.path
    if bag.import_errors:
        print(json.dumps({"import_errors": {str(k): v for k, v in bag.import_errors.items()}}))
        return 1
    run = bag.dags[dag_id].test(run_conf=conf)
    tasks = sorted((ti.task_id, ti.map_index, str(ti.state)) for ti in run.get_task_instances())
    print(json.dumps({"state": str(run.state), "tasks": tasks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
