"""Drive the CrossGuard pack as the Pulumi engine does: start it, then call its analyzer over gRPC.

Runs inside the pack's own virtualenv (pulumi-policy's protobuf pin). Reads a JSON list of
`{"type", "name", "props"}` on stdin; prints, for each, the violations `Analyze` reports and the
properties `Remediate` returns, as JSON. With `--stack`, sends them all as one stack to
`AnalyzeStack` and prints its violations (policy, message, urn).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "stacks" / "policy-pack"


def main() -> None:
    requests: list[dict[str, Any]] = json.load(sys.stdin)
    # The checkout's remediate, not the copy pip installed into the venv, so edits count at once.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "__main__.py"], cwd=PACK, env=env, stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        stub = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        if sys.argv[1:] == ["--stack"]:
            json.dump(_stack(stub, requests), sys.stdout)
            return
        results = []
        for item in requests:
            properties = struct_pb2.Struct()
            properties.update(item["props"])
            request = analyzer_pb2.AnalyzeRequest(
                type=item["type"],
                name=item["name"],
                urn=f"urn:pulumi:test::test::{item['type']}::{item['name']}",
                properties=properties,
            )
            analyzed = stub.Analyze(request, timeout=30)
            remediated = stub.Remediate(request, timeout=30)
            results.append(
                {
                    "violations": [
                        {"policy": d.policyName, "message": d.message} for d in analyzed.diagnostics
                    ],
                    "remediations": [
                        {"policy": r.policyName, "props": json_format.MessageToDict(r.properties)}
                        for r in remediated.remediations
                    ],
                }
            )
        json.dump(results, sys.stdout)
    finally:
        server.kill()
        server.wait()


def _urn(item: dict[str, Any]) -> str:
    return f"urn:pulumi:test::test::{item['type']}::{item['name']}"


def _stack(stub: Any, requests: list[dict[str, Any]]) -> list[dict[str, str]]:
    resources = []
    for item in requests:
        properties = struct_pb2.Struct()
        properties.update(item["props"])
        resources.append(
            analyzer_pb2.AnalyzerResource(
                type=item["type"], name=item["name"], urn=_urn(item), properties=properties
            )
        )
    analyzed = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=30)
    return [
        {"policy": d.policyName, "message": d.message, "urn": d.urn} for d in analyzed.diagnostics
    ]


if __name__ == "__main__":
    main()
