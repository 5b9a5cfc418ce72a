"""What a command handler sees: the configuration, the session's place, an outbox.

A handler never changes anything directly. It stages a new configuration
(`commit`), a mode change (`enter`) or a VR change (`set_vr`), and prints
into `output`; the session applies all of it only if the handler returned
without `CommandError` and the gateway accepted the configuration, so a
failed command leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config.model import IkePolicyRule, PreSharedKey, RunningConfig, TunnelInterface
from ..config.tokens import Token
from .gateway import Gateway
from .tree import CommandError, Mode

Target = str | int | None


@dataclass
class Context:
    gateway: Gateway
    config: RunningConfig  # as it was when the command started
    mode: Mode
    vr: str
    target: Target  # tunnel name, IKE rule number or key peer in a sub-mode
    now: float  # wall clock, for uptimes
    run_operational: Callable[[Context, list[Token]], None]
    filtered: bool = False  # the line has an output filter (`| include ...`)
    new_config: RunningConfig | None = None
    output: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def current(self) -> RunningConfig:
        """The configuration including what this command staged so far."""
        return self.new_config if self.new_config is not None else self.config

    def commit(self, config: RunningConfig) -> None:
        self.new_config = config

    def enter(self, mode: Mode, target: Target = None) -> None:
        self.mode, self.target = mode, target

    def print(self, text: str) -> None:
        self.output.append(text)

    # -- the object a sub-mode edits --------------------------------------------

    def tunnel(self) -> TunnelInterface:
        assert isinstance(self.target, str)
        tunnel = self.current.tunnel(self.target)
        if tunnel is None:
            raise CommandError(f"Interface ipsec:{self.target} no longer exists")
        return tunnel

    def ike_rule(self) -> IkePolicyRule:
        assert isinstance(self.target, int)
        rule = self.current.ike_policy_rule(self.target)
        if rule is None:
            raise CommandError(f"IKE policy rule {self.target} no longer exists")
        return rule

    def manual_key(self) -> PreSharedKey:
        assert isinstance(self.target, str)
        key = self.current.pre_shared_key(self.target)
        if key is None:
            raise CommandError(f"Pre-shared key for {self.target} no longer exists")
        return key
