"""The local IPC channel between the queue controller and the media workers.

One Unix-domain stream socket, served by the controller; each worker connects once and says hello.
Every message is one line of JSON with a "type". Workers report what happened on their calls;
the controller tells them what to do. Nothing here imports pjsua2, so the controller never loads it.

worker -> controller
  hello        worker, pid, sip_port
  incoming     call, caller, callee, sip_call_id, at          (citizen answered by the worker)
  leg_answered call, leg, at                                   (seat / transfer / conference / supervisor)
  leg_failed   call, leg, status, reason                       (no answer, busy, unreachable)
  leg_ended    call, leg, cause
  dtmf         call, digit, method                             (method: rfc4733 | sip_info)
  ended        call, cause, side, at, recording{path, bytes, sha256, seconds} | null
  error        call, message                                   (a command could not be carried out)

controller -> worker
  play         call, files, loop_last                          (prompts in order, last one looped)
  stop_play    call
  ring         call, leg, uri, timeout                         (dial a leg; bridged to the citizen on answer)
  drop_leg     call, leg
  supervise    call, uri, mode, timeout                        (listen | whisper | barge)
  set_mode     call, mode                                      (change a connected supervisor's mode)
  hangup       call, cause
  dial         call, uri, caller_id, timeout                   (outbound: the far end becomes the citizen leg)
  shutdown
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 64 * 1024

# Legs a worker may carry next to the citizen (pjsua2's wheel holds at most 4 calls per process).
LEGS = ("seat", "transfer", "conference", "supervisor")
SUPERVISION_MODES = ("listen", "whisper", "barge")


class ProtocolError(ValueError):
    """A line that is not a JSON object with a known "type"."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message of {len(line)} bytes is longer than {MAX_LINE}")
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string 'type'")
    return message
