"""Start, follow and steer SPARK runs from a Python service with Temporal's Python SDK.

    python spark_service.py check rlTrain rl.json             # validate against the published schema only
    python spark_service.py start rlTrain rl.json [--wait]    # validate, start; prints the workflow ID
    python spark_service.py progress spark/my-rl/rl-train     # the `progress` query, as JSON
    python spark_service.py pause spark/my-rl/rl-train        # also resume, stop (after the next checkpoint)
    python spark_service.py result spark/my-rl/rl-train       # waits for the run; its result as JSON

Every workflow takes one JSON object. It is checked against docs/schemas/<workflow>.input.json before it
is sent, so a mistake fails here naming the field instead of failing the run on a worker.

Environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (default `default`),
TEMPORAL_API_KEY (Temporal Cloud; implies TLS), TEMPORAL_TLS=true, TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY
(mTLS client certificate and key files), SPARK_TASK_QUEUE (default `spark`),
SPARK_SCHEMAS_DIR (default: this repository's docs/schemas; in a service, the schemas shipped in the
npm package, node_modules/spark-temporal/docs/schemas, or a copy).

Exit codes: 0 done, 1 the run failed or the request was refused, 2 bad command line or input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, TLSConfig

DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
# The search attributes every SPARK run carries; set at start so a run is listed before a worker picks it up.
SPARK_RUN = SearchAttributeKey.for_keyword("SparkRun")
SPARK_STAGE = SearchAttributeKey.for_keyword("SparkStage")
# The workflows that run the GRPO loop and take its signals.
GRPO_WORKFLOWS = {"rlTrain", "coEvolve"}
SIGNALS = {"pause": "pause", "resume": "resume", "stop": "stopAfterCheckpoint"}
UNKNOWN_FIELD = "unknown field (check the spelling against the input schema)"


@dataclass(frozen=True)
class InputIssue:
    field: str  # dotted path, `(input)` for the whole object
    message: str


class SparkInputError(ValueError):
    """Input refused before it reaches Temporal; the message lists `field: problem` per issue."""

    def __init__(self, workflow: str, issues: list[InputIssue]) -> None:
        self.workflow = workflow
        self.issues = issues
        super().__init__(
            f"invalid {workflow} input:\n" + "\n".join(f"  {i.field}: {i.message}" for i in issues)
        )


class RefusedError(RuntimeError):
    """A request the run cannot take (wrong workflow, not running)."""


def schemas_dir() -> Path:
    return Path(os.environ.get("SPARK_SCHEMAS_DIR") or DEFAULT_SCHEMAS_DIR)


def load_schema(workflow: str) -> dict[str, Any]:
    path = schemas_dir() / f"{workflow}.input.json"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".input.json") for p in schemas_dir().glob("*.input.json"))
        problem = f"no schema {path}; expected one of {', '.join(known)}"
        raise SparkInputError(workflow, [InputIssue("(workflow)", problem)])
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _dotted(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "(input)"


def _issues(error: ValidationError) -> list[InputIssue]:
    """Names the field itself where jsonschema names its parent (required, unknown fields)."""
    at = list(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        return [InputIssue(_dotted([*at, missing.group(1)]) if missing else _dotted(at), "required")]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        return [InputIssue(_dotted([*at, k]), UNKNOWN_FIELD) for k in unknown]
    return [InputIssue(_dotted(at), error.message)]


def input_issues(schema: dict[str, Any], value: Any) -> list[InputIssue]:
    errors = sorted(
        Draft202012Validator(schema).iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [issue for error in errors for issue in _issues(error)]


def validate_input(workflow: str, value: Any) -> None:
    """Raises SparkInputError naming each field the published schema refuses."""
    issues = input_issues(load_schema(workflow), value)
    if issues:
        raise SparkInputError(workflow, issues)


def stage_of(workflow: str) -> str:
    """The stage part of workflow IDs and the SparkStage value: rlTrain -> rl-train."""
    return re.sub(r"[A-Z]", lambda m: f"-{m.group(0).lower()}", workflow)


def tls_config(api_key: str | None) -> bool | TLSConfig:
    """TLS from TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY (mTLS), TEMPORAL_TLS=true or an API key."""
    cert, key = os.environ.get("TEMPORAL_TLS_CERT"), os.environ.get("TEMPORAL_TLS_KEY")
    if bool(cert) != bool(key):
        raise ConnectionError("TLS client auth needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY")
    if cert and key:
        try:
            return TLSConfig(client_cert=Path(cert).read_bytes(), client_private_key=Path(key).read_bytes())
        except OSError as err:
            raise ConnectionError(f"TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: {err}") from err
    return os.environ.get("TEMPORAL_TLS") == "true" or api_key is not None


async def connect() -> Client:
    address = os.environ.get("TEMPORAL_ADDRESS") or "127.0.0.1:7233"
    namespace = os.environ.get("TEMPORAL_NAMESPACE") or "default"
    api_key = os.environ.get("TEMPORAL_API_KEY") or None
    tls = tls_config(api_key)
    try:
        return await Client.connect(address, namespace=namespace, api_key=api_key, tls=tls)
    except RuntimeError as err:  # the SDK's connection failure
        where = f"Temporal at {address} (namespace {namespace})"
        raise ConnectionError(f"cannot reach {where}: {err}; set TEMPORAL_ADDRESS") from err


async def start(
    client: Client, workflow: str, value: dict[str, Any], workflow_id: str | None = None
) -> WorkflowHandle[Any, Any]:
    """Validates `value`, then starts `workflow` under `spark/<runName>/<stage>` (or `workflow_id`)."""
    validate_input(workflow, value)
    run_name = value["runName"]
    return await client.start_workflow(
        workflow,
        value,
        id=workflow_id or f"spark/{run_name}/{stage_of(workflow)}",
        task_queue=os.environ.get("SPARK_TASK_QUEUE") or "spark",
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(SPARK_RUN, run_name), SearchAttributePair(SPARK_STAGE, stage_of(workflow))]
        ),
    )


async def signal(client: Client, workflow_id: str, name: str) -> None:
    """Sends a GRPO-loop signal to a running rlTrain or coEvolve run."""
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    if description.workflow_type not in GRPO_WORKFLOWS:
        raise RefusedError(
            f"{workflow_id} is a {description.workflow_type} run; only rlTrain and coEvolve take {name}"
        )
    if description.status is None or description.status.name != "RUNNING":
        raise RefusedError(f"{workflow_id} is not running")
    await handle.signal(SIGNALS[name])


def read_json(path: str) -> Any:
    try:
        return json.loads(sys.stdin.read() if path == "-" else Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SparkInputError("(file)", [InputIssue(path, f"cannot read JSON: {err}")]) from err


async def run(args: argparse.Namespace) -> int:
    if args.command == "check":
        validate_input(args.workflow, read_json(args.input))
        print(json.dumps({"workflow": args.workflow, "valid": True}))
        return 0
    if args.command == "start":
        value = read_json(args.input)
        validate_input(args.workflow, value)  # before connecting: bad input fails without a server
        client = await connect()
        handle = await start(client, args.workflow, value, args.workflow_id)
        print(json.dumps({"workflowId": handle.id, "runId": handle.result_run_id}))
        if args.wait:
            print(json.dumps(await handle.result()))
        return 0
    client = await connect()
    if args.command == "progress":
        print(json.dumps(await client.get_workflow_handle(args.workflow_id).query("progress")))
    elif args.command in SIGNALS:
        await signal(client, args.workflow_id, args.command)
        print(json.dumps({"workflowId": args.workflow_id, "signal": SIGNALS[args.command]}))
    elif args.command == "result":
        print(json.dumps(await client.get_workflow_handle(args.workflow_id).result()))
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="spark_service.py", description="Start, follow and steer SPARK runs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "start"):
        command = commands.add_parser(name, help=f"{name} a run from a JSON input file ('-' reads stdin)")
        command.add_argument("workflow")
        command.add_argument("input")
        if name == "start":
            command.add_argument("--workflow-id", help="default spark/<runName>/<stage>")
            command.add_argument("--wait", action="store_true", help="wait for the run and print its result")
    for name in ("progress", *SIGNALS, "result"):
        commands.add_parser(name).add_argument("workflow_id")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(run(args))
    except SparkInputError as err:
        print(f"spark_service {args.command}: {err}", file=sys.stderr)
        return 2
    except WorkflowFailureError as err:
        cause = err.cause.message if err.cause is not None and hasattr(err.cause, "message") else str(err)
        print(f"spark_service {args.command}: the run failed: {cause}", file=sys.stderr)
        return 1
    except WorkflowAlreadyStartedError as err:
        going = f"a run with workflow ID '{err.workflow_id}' is already going"
        print(f"spark_service {args.command}: {going}", file=sys.stderr)
        return 1
    except (RefusedError, ConnectionError, RPCError) as err:
        print(f"spark_service {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main()
    # A short-lived client process can abort in interpreter teardown while the SDK's Rust threads still
    # run (temporalio/sdk-python#300, "PyGILState_Release"); once the output is out, leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
