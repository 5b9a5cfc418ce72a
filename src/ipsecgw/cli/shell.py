"""The interactive shell: prompt_toolkit in front of a control-socket session.

What an IOS/JUNOSe user expects from the keyboard:

- `?` shows the possible next words (or the completions of the word being
  typed) with one-line help at once, without Enter, and gives the line back
  as it was; inside a "quoted string" it is just a question mark;
- Tab completes the word (with a blank after it when there is only one
  candidate), a second Tab cycles through the candidates;
- Up/Down walk the history; Ctrl-C abandons the line; Ctrl-Z in a
  configuration mode is `end`; Ctrl-D on an empty line, or `exit` in exec
  mode, leaves.

Every decision about words is the daemon's: the shell asks it over the
control socket (`complete`, `help`), so the shell cannot disagree with what
`execute` will do.
"""

from __future__ import annotations

from collections.abc import Iterator

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from .protocol import ControlClient, ControlError
from .redact import redact
from .session import format_error, format_help


def _partial_word(text: str) -> str:
    return "" if not text or text[-1].isspace() else text.split()[-1]


def _inside_quotes(text: str) -> bool:
    return text.count('"') % 2 == 1


class RemoteCompleter(Completer):
    """Tab completion by the daemon's command tree."""

    def __init__(self, client: ControlClient) -> None:
        self.client = client

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        partial = _partial_word(text)
        try:
            candidates = self.client.complete(text)
        except ControlError:
            return  # the next command reports the lost connection

        for word, help_text in candidates:
            # A lone candidate is completed with a blank, ready for the next word.
            insert = word + " " if len(candidates) == 1 else word
            yield Completion(
                insert, start_position=-len(partial), display=word, display_meta=help_text
            )


class Shell:
    def __init__(self, client: ControlClient) -> None:
        self.client = client
        self.prompt = client.prompt()
        bindings = KeyBindings()
        bindings.add("?")(self._question_mark)
        bindings.add("c-z")(self._ctrl_z)
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            completer=RemoteCompleter(client),
            complete_while_typing=False,
            key_bindings=bindings,
        )

    def _question_mark(self, event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.document.text_before_cursor
        if _inside_quotes(text):
            buffer.insert_text("?")
            return
        try:
            answer = self.client.help(text)
        except ControlError as exc:
            answer = {"error": f"% {exc}"}
        prompt = self.prompt

        def show() -> None:
            print(f"{prompt}{redact(text)}?")  # the scrollback keeps no secret
            if answer.get("error"):
                print(
                    format_error(
                        answer["error"], answer.get("caret"), prompt=prompt, line=text, echo=False
                    )
                )
            else:
                print(format_help([(w, h) for w, h in answer.get("help", [])]))

        run_in_terminal(show)

    def _ctrl_z(self, event: KeyPressEvent) -> None:
        """IOS: Ctrl-Z in a configuration mode is `end`; elsewhere it does nothing."""
        if "(config" in self.prompt:
            event.current_buffer.text = "end"
            event.current_buffer.validate_and_handle()

    def run(self) -> int:
        while True:
            try:
                line = self.session.prompt(self.prompt)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            answer = self.client.execute(line)
            if answer.get("ok"):
                if answer.get("output"):
                    print(answer["output"])
            else:
                print(
                    format_error(
                        answer.get("error", ""),
                        answer.get("caret"),
                        prompt=self.prompt,
                        line=line,
                        echo=False,
                    )
                )
            self.prompt = answer.get("prompt", self.prompt)
            if answer.get("closed"):
                return 0


def run_shell(client: ControlClient) -> int:
    return Shell(client).run()
