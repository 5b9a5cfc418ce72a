"""IKE policy rule mode and manual key mode (SPEC 3.3).

An IKE policy rule's fields are a settings table (`cli.settings`): each row
registers the command and its `no` form; the defaults are IkePolicyRule's.
"""

from __future__ import annotations

from dataclasses import replace

from ..config.model import (
    AGGRESSIVE_MODES,
    AUTHENTICATIONS,
    DH_GROUPS,
    ENCRYPTIONS,
    HASHES,
    IkePolicyRule,
)
from .commands_config import choice
from .context import Context
from .helptext import GROUP_HELP
from .settings import Place, Reader, Setting, number, register
from .tree import TREE, Args, CommandError, Mode

command = TREE.command
KEY = {Mode.CONFIG_MANUAL_KEY}
_DEFAULT = IkePolicyRule(1)

IKE_RULE = Place(
    get=lambda ctx: ctx.ike_rule(),
    put=lambda ctx, rule: ctx.commit(ctx.current.with_ike_policy_rule(rule)),
)


def _one_of(name: str, choices: tuple[str, ...]) -> Reader:
    return lambda ctx, args: choice(args.text(name), choices)


def _alternatives(choices: tuple[object, ...]) -> str:
    return "|".join(str(c) for c in choices)


register(
    IKE_RULE,
    {Mode.CONFIG_IKE_POLICY},
    [
        Setting("authentication", f"{{{_alternatives(AUTHENTICATIONS)}}}=method",
                "authentication", _DEFAULT.authentication,
                _one_of("method", AUTHENTICATIONS), "Set the authentication method.",
                "Restore the default authentication (pre-share)."),
        Setting("encryption", f"{{{_alternatives(ENCRYPTIONS)}}}=cipher", "encryption",
                _DEFAULT.encryption, _one_of("cipher", ENCRYPTIONS),
                "Set the phase 1 encryption algorithm.",
                "Restore the default encryption (aes256)."),
        Setting("hash", f"{{{_alternatives(HASHES)}}}=hash", "hash", _DEFAULT.hash,
                _one_of("hash", HASHES), "Set the phase 1 hash algorithm (sha = SHA-1).",
                "Restore the default hash (sha256)."),
        Setting("group", f"{{{_alternatives(DH_GROUPS)}}}=group", "group", _DEFAULT.group,
                number("group"), "Set the Diffie-Hellman group.",
                "Restore the default group (14).", help=GROUP_HELP),
        Setting("lifetime", "seconds <seconds:10-86400>", "lifetime_seconds",
                _DEFAULT.lifetime_seconds, number("seconds"), "Set the ISAKMP/IKE SA lifetime.",
                "Restore the default lifetime (28800 s).",
                help={"lifetime": "ISAKMP/IKE SA lifetime"}),
        Setting("aggressive-mode", f"{{{_alternatives(AGGRESSIVE_MODES)}}}=policy",
                "aggressive_mode", _DEFAULT.aggressive_mode,
                _one_of("policy", AGGRESSIVE_MODES),
                "Set the aggressive mode policy of this rule.",
                "Restore the default aggressive mode policy (accepted)."),
    ],
)


def _set_secret(ctx: Context, secret: str | None) -> None:
    ctx.commit(ctx.current.with_pre_shared_key(replace(ctx.manual_key(), secret=secret)))


@command("key <secret:SECRET>", modes=KEY, help={"key": "Set the pre-shared key"})
def key(ctx: Context, args: Args) -> None:
    """Set the pre-shared key (shown and saved only masked)."""
    _set_secret(ctx, args.text("secret"))


@command("masked-key <secret:MASKED>", modes=KEY)
def masked_key(ctx: Context, args: Args) -> None:
    """Set the pre-shared key from its masked form."""
    _set_secret(ctx, args.text("secret"))


@command(
    "no {key [<secret:SECRET>]|masked-key [<secret:MASKED>]}",
    modes=KEY,
    help={"key": "Remove the pre-shared key"},
)
def no_key(ctx: Context, args: Args) -> None:
    """Remove the pre-shared key (the key, if given, must be the configured one)."""
    typed = args.opt_text("secret")
    if typed is not None and typed != ctx.manual_key().secret:
        # Never echo either key: say only that they differ.
        raise CommandError("Not the configured key", at="secret")
    _set_secret(ctx, None)
