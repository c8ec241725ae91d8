"""The pydantic models read the protocol as the TypeScript schemas do: every example in
docs/trainer-protocol.md parses, requests are strict and name the offending field, and the version
is checked before anything else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from spark_trainer.protocol import (
    SCHEMAS,
    CreateSessionRequest,
    GrpoExample,
    ProtocolError,
    SaveCheckpointRequest,
    TrainStepRequest,
    check_protocol_version,
    parse_line,
    parse_message,
    to_wire,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "trainer-protocol.md"


def json_examples(markdown: str) -> list[tuple[str | None, int, str]]:
    """Every ```json block with the schema named by the `<!-- schema: X -->` comment above it."""
    lines = markdown.split("\n")
    examples: list[tuple[str | None, int, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```json":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            k = i - 1
            while k >= 0 and lines[k].strip() == "":
                k -= 1
            label = re.match(r"^<!--\s*schema:\s*(\w+)\s*-->$", lines[k].strip()) if k >= 0 else None
            examples.append((label.group(1) if label else None, i + 1, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return examples


EXAMPLES = json_examples(DOC.read_text(encoding="utf-8"))


def test_every_schema_has_a_labelled_example() -> None:
    assert [line for name, line, _ in EXAMPLES if name is None] == []
    assert {name for name, _, _ in EXAMPLES} == set(SCHEMAS)


@pytest.mark.parametrize(
    ("schema", "line", "text"), EXAMPLES, ids=[f"line{line}-{n}" for n, line, _ in EXAMPLES]
)
def test_doc_example_parses(schema: str, line: int, text: str) -> None:
    SCHEMAS[schema].model_validate_json(text)


VALID_CREATE: dict[str, Any] = {
    "protocolVersion": 1,
    "sessionId": "spark-run-1-rl",
    "baseModel": "tiny",
    "adapter": {"kind": "lora", "rank": 8, "alpha": 16, "targetModules": ["q_proj"]},
    "optimizer": {
        "name": "adamw",
        "learningRate": 1e-6,
        "betas": [0.9, 0.999],
        "weightDecay": 0,
        "warmupSteps": 0,
    },
    "seed": 1,
}
VALID_STEP: dict[str, Any] = {
    "protocolVersion": 1,
    "step": 3,
    "batch": {"uri": "s3://spark/batches/b.jsonl", "sha256": "a" * 64, "bytes": 10},
    "loss": {"kind": "grpo", "klCoefficient": 0.001, "entropyCoefficient": 0},
}


def problem(model: Any, body: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_message(model, json.dumps(body))
    return caught.value


def test_the_valid_messages_parse() -> None:
    assert parse_message(CreateSessionRequest, json.dumps(VALID_CREATE)).optimizer.betas == (0.9, 0.999)
    assert parse_message(TrainStepRequest, json.dumps(VALID_STEP)).loss.kind == "grpo"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**VALID_STEP, "learningrate": 1e-6}, "learningrate: unknown field"),
        (
            {**VALID_CREATE, "optimizer": {**VALID_CREATE["optimizer"], "learningrate": 1e-6}},
            "optimizer.learningrate: unknown field",
        ),
        (
            {**VALID_CREATE, "adapter": {**VALID_CREATE["adapter"], "targetModule": ["q_proj"]}},
            "adapter.targetModule: unknown field",
        ),
    ],
)
def test_an_unknown_field_is_named(body: dict[str, Any], message: str) -> None:
    model = TrainStepRequest if "step" in body else CreateSessionRequest
    err = problem(model, body)
    assert (err.code, err.status) == ("invalid-request", 400)
    assert message in err.message


def test_nested_union_errors_name_the_field_without_the_tag() -> None:
    assert problem(TrainStepRequest, {**VALID_STEP, "loss": {"kind": "grpo"}}).message == (
        "loss.klCoefficient: required field; loss.entropyCoefficient: required field"
    )
    sft = problem(TrainStepRequest, {**VALID_STEP, "loss": {"kind": "sft", "klCoefficient": 0.001}})
    assert sft.message == "loss.klCoefficient: unknown field"


def test_values_keep_their_json_types_and_optional_fields_are_not_null() -> None:
    as_string = {**VALID_CREATE, "optimizer": {**VALID_CREATE["optimizer"], "learningRate": "1e-6"}}
    assert problem(CreateSessionRequest, as_string).message.startswith("optimizer.learningRate: ")
    assert problem(TrainStepRequest, {**VALID_STEP, "step": 1.5}).message.startswith("step: ")
    assert problem(TrainStepRequest, {**VALID_STEP, "step": True}).message.startswith("step: ")
    assert problem(TrainStepRequest, {**VALID_STEP, "learningRate": None}).message.startswith(
        "learningRate: "
    )
    # A checkpoint's step may be null (initial weights) and is told apart from an absent one.
    assert (
        parse_message(SaveCheckpointRequest, '{"protocolVersion": 1, "uri": "s3://a/b", "step": null}').step
        is None
    )
    assert (
        "step"
        not in parse_message(
            SaveCheckpointRequest, '{"protocolVersion": 1, "uri": "s3://a/b"}'
        ).model_fields_set
    )


def test_uris_and_hashes_are_checked() -> None:
    assert problem(SaveCheckpointRequest, {"protocolVersion": 1, "uri": "s3://spark/ck/"}).message.startswith(
        "uri: "
    )
    batch = {"uri": "s3://spark/b", "bytes": 10}
    assert problem(TrainStepRequest, {**VALID_STEP, "batch": batch}).message == "batch.sha256: required field"


def test_the_version_is_checked_before_the_schema() -> None:
    err = problem(TrainStepRequest, {**VALID_STEP, "protocolVersion": 2, "newField": True})
    assert (err.code, err.status) == ("version-mismatch", 400)
    assert err.details == {"serverVersion": 1, "requestVersion": 2}
    assert err.message == (
        "trainer protocol version mismatch: the message is version 2, "
        "this side speaks trainer protocol version 1; "
        "run a control plane and trainer server that speak the same version"
    )
    assert (
        check_protocol_version({"step": 0})
        == "message has no protocolVersion; this side speaks trainer protocol version 1"
    )
    assert "got an array" in (check_protocol_version([]) or "")
    assert 'the message is version "1"' in (check_protocol_version({"protocolVersion": "1"}) or "")


def test_batch_lines_name_their_line_and_field() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_line(GrpoExample, b'{"prompt": [{"role": "user", "content": "q"}], "completion": "a"}', 7)
    assert caught.value.message == "batch line 7: advantage: required field"
    with pytest.raises(ProtocolError) as caught:
        parse_line(GrpoExample, b"{not json", 2)
    assert caught.value.message.startswith("batch line 2 is not valid JSON")
    spans = '{"prompt": [{"role": "user", "content": "q"}], "completion": "ab", "advantage": 1,'
    spans += ' "stepAdvantages": [{"end": 2, "advantage": 1}, {"end": 1, "advantage": 0}]}'
    with pytest.raises(ProtocolError) as caught:
        parse_line(GrpoExample, spans, 1)
    assert caught.value.message == "batch line 1: stepAdvantages: step ends must increase"


def test_responses_send_required_nulls_and_leave_unset_options_out() -> None:
    create = parse_message(CreateSessionRequest, json.dumps(VALID_CREATE))
    wire = to_wire(create.config())
    assert "dropout" not in wire["adapter"] and "resumeFrom" not in wire
    saved = SCHEMAS["SaveCheckpointResponse"].model_validate(
        {
            "protocolVersion": 1,
            "uri": "s3://a/b",
            "step": None,
            "markerUri": "s3://a/b/COMMITTED",
            "created": True,
        }
    )
    assert to_wire(saved)["step"] is None


def test_grpo_lines_may_say_why_the_completion_ended() -> None:
    base = '{"prompt": [{"role": "user", "content": "q"}], "completion": "a", "advantage": 1'
    assert parse_line(GrpoExample, base + "}", 1).finishReason is None
    assert parse_line(GrpoExample, base + ', "finishReason": "length"}', 1).finishReason == "length"
    with pytest.raises(ProtocolError) as caught:
        parse_line(GrpoExample, base + ', "finishReason": "cut"}', 3)
    assert caught.value.message.startswith("batch line 3: finishReason: Input should be 'stop', 'length'")
