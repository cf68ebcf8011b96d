#!/usr/bin/env python3
"""Benchmark the knowledge import: N generated documents into a throwaway collection, through the same
code as prism_weaviate_knowledge (validation, batches with the failed objects checked). Prints figures,
asserts nothing; the collection is deleted afterwards.

Usage (from the repository root, against a running Weaviate, e.g. the Molecule stack):
  .venv/bin/python scripts/bench_weaviate_import.py --port 18090 --grpc-port 15051 \
      --api-key-file .secrets/molecule/weaviate_api_key -n 10000 --batch-size 100
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from module_utils.prism_weaviate import connect  # noqa: E402
from module_utils.prism_weaviate_knowledge import (  # noqa: E402
    create_collection,
    import_batches,
    load_documents,
    parse_properties,
)

WORDS = [
    "pump",
    "bearing",
    "vibration",
    "spindle",
    "conveyor",
    "belt",
    "torque",
    "calibration",
    "weld",
    "seam",
    "porosity",
    "press",
    "light",
    "curtain",
    "lockout",
    "tagout",
    "isolation",
    "hydraulic",
    "oil",
    "filter",
    "contamination",
    "robot",
    "gearbox",
    "grease",
    "compressor",
    "leak",
    "energy",
    "inspection",
    "quality",
    "defect",
    "scrap",
    "rework",
    "setup",
    "tolerance",
    "gauge",
    "measurement",
    "safety",
    "permit",
    "forklift",
    "shift",
]
DOMAINS = ("maintenance", "quality", "safety", "operations")


def generated(count: int, seed: int) -> list[tuple[str, str]]:
    """count knowledge files as (name, YAML text), about 80 words of content each."""
    rng = random.Random(seed)
    files = []
    for index in range(count):
        doc = {
            "title": " ".join(rng.choice(WORDS) for _ in range(6)).capitalize(),
            "content": " ".join(rng.choice(WORDS) for _ in range(80)) + ".",
            "source": f"BENCH-{index:06d}",
            "domain": rng.choice(DOMAINS),
            "tags": rng.sample(WORDS, 3),
            "language": "en",
            "updated_at": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        }
        files.append((f"bench-{index:06d}.yml", yaml.safe_dump(doc, sort_keys=False)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--api-key-file", type=Path, required=True)
    parser.add_argument("-n", "--count", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    declared = yaml.safe_load((ROOT / "roles" / "weaviate" / "defaults" / "main.yml").read_text())
    specs = parse_properties(declared["weaviate_knowledge_properties"])
    name = f"Bench{secrets.token_hex(4)}"
    params = {
        "weaviate_host": args.host,
        "weaviate_port": args.port,
        "weaviate_grpc_port": args.grpc_port,
        "weaviate_secure": False,
        "weaviate_api_key": args.api_key_file.read_text().strip(),
        "weaviate_timeout": 60,
    }

    files = generated(args.count, seed=5)
    t0 = time.perf_counter()
    documents = load_documents(files, name, specs)
    t_validate = time.perf_counter() - t0
    client = connect(params)
    try:
        create_collection(client, name, "benchmark (deleted afterwards)", specs, 0.75, 1.2)
        t1 = time.perf_counter()
        batches = import_batches(client, name, documents, args.batch_size)
        t_import = time.perf_counter() - t1
        total = client.collections.get(name).aggregate.over_all(total_count=True).total_count
    finally:
        client.collections.delete(name)
        client.close()
    print(f"documents:        {args.count} generated, validated in {t_validate:.2f} s")
    print(
        f"import:           {batches} batches of {args.batch_size}, {t_import:.2f} s, {total} objects counted"
    )
    print(f"objects/s:        {args.count / t_import:.0f}")


if __name__ == "__main__":
    main()
