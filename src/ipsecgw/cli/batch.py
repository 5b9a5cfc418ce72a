"""`ipsecgw cli -c CMD [-c CMD ...]`: one session, commands in order (SPEC 3.1).

Like vtysh -c: the session starts in privileged exec, so `-c "configure
terminal" -c "..."` works. Output goes to stdout; a rejected command is
echoed with its prompt and the error (with the '^' marker) to stderr, the
remaining commands still run, and the exit status is 1. A secret in the
echoed line is replaced by `<hidden>` (`cli.redact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from .protocol import ControlClient
from .redact import redact
from .session import format_error


def run_batch(client: ControlClient, commands: Sequence[str], out: TextIO, err: TextIO) -> int:
    prompt = client.prompt()
    status = 0
    for line in commands:
        answer = client.execute(line)
        if answer.get("ok"):
            if answer.get("output"):
                print(answer["output"], file=out, flush=True)
        else:
            status = 1
            error = format_error(
                answer.get("error", ""), answer.get("caret"), prompt=prompt, line=redact(line), echo=True
            )
            print(error, file=err, flush=True)
        prompt = answer.get("prompt", prompt)
        if answer.get("closed"):
            break
    return status
