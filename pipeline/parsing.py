"""Reading the JSON object a VLM wrote, as models actually write it."""

from __future__ import annotations

import json
import re

from .errors import ModelOutputError

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def parse_json_object(text: str, required: tuple[str, ...] = ()) -> dict:
    """The first complete JSON object in `text`: inside code fences or prose, trailing commas tolerated.

    A truncated object (generation stopped at max_tokens) is an error, never a guess.
    """
    fenced = _FENCE.search(text)
    candidate = _first_object(fenced.group(1) if fenced else text)
    try:
        parsed = json.loads(candidate)
    except json.JSONDecodeError:
        try:
            parsed = json.loads(_TRAILING_COMMA.sub(r"\1", candidate))
        except json.JSONDecodeError as error:
            raise ModelOutputError(f"model output is not valid JSON: {error.msg} at {error.pos}") from error
    if not isinstance(parsed, dict):
        raise ModelOutputError("model output is not a JSON object")
    missing = [key for key in required if key not in parsed]
    if missing:
        raise ModelOutputError(f"model output lacks {', '.join(missing)}")
    return parsed


def _first_object(text: str) -> str:
    start = text.find("{")
    if start < 0:
        raise ModelOutputError("model output contains no JSON object")
    depth, in_string, escaped = 0, False, False
    for position in range(start, len(text)):
        char = text[position]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : position + 1]
    raise ModelOutputError("model output is truncated: the JSON object never closes")
