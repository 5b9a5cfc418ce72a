"""IKE policy rule mode and manual key mode (SPEC 3.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

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
from .tree import TREE, Args, Mode

command = TREE.command
IKE = {Mode.CONFIG_IKE_POLICY}
KEY = {Mode.CONFIG_MANUAL_KEY}
_DEFAULT = IkePolicyRule(1)


def _edit(ctx: Context, **changes: Any) -> None:
    ctx.commit(ctx.current.with_ike_policy_rule(replace(ctx.ike_rule(), **changes)))


@command(f"authentication {{{'|'.join(AUTHENTICATIONS)}}}=method", modes=IKE)
def authentication(ctx: Context, args: Args) -> None:
    """Set the authentication method."""
    _edit(ctx, authentication=choice(args.text("method"), AUTHENTICATIONS))


@command("no authentication", modes=IKE)
def no_authentication(ctx: Context, args: Args) -> None:
    """Restore the default authentication (pre-share)."""
    _edit(ctx, authentication=_DEFAULT.authentication)


@command(f"encryption {{{'|'.join(ENCRYPTIONS)}}}=cipher", modes=IKE)
def encryption(ctx: Context, args: Args) -> None:
    """Set the phase 1 encryption algorithm."""
    _edit(ctx, encryption=choice(args.text("cipher"), ENCRYPTIONS))


@command("no encryption", modes=IKE)
def no_encryption(ctx: Context, args: Args) -> None:
    """Restore the default encryption (aes256)."""
    _edit(ctx, encryption=_DEFAULT.encryption)


@command(f"hash {{{'|'.join(HASHES)}}}=hash", modes=IKE)
def hash_(ctx: Context, args: Args) -> None:
    """Set the phase 1 hash algorithm (sha = SHA-1)."""
    _edit(ctx, hash=choice(args.text("hash"), HASHES))


@command("no hash", modes=IKE)
def no_hash(ctx: Context, args: Args) -> None:
    """Restore the default hash (sha256)."""
    _edit(ctx, hash=_DEFAULT.hash)


@command(f"group {{{'|'.join(str(g) for g in DH_GROUPS)}}}=group", modes=IKE, help=GROUP_HELP)
def group(ctx: Context, args: Args) -> None:
    """Set the Diffie-Hellman group."""
    _edit(ctx, group=args.number("group"))


@command("no group", modes=IKE)
def no_group(ctx: Context, args: Args) -> None:
    """Restore the default group (14)."""
    _edit(ctx, group=_DEFAULT.group)


@command(
    "lifetime seconds <seconds:10-86400>", modes=IKE, help={"lifetime": "ISAKMP/IKE SA lifetime"}
)
def lifetime(ctx: Context, args: Args) -> None:
    """Set the ISAKMP/IKE SA lifetime."""
    _edit(ctx, lifetime_seconds=args.number("seconds"))


@command("no lifetime", modes=IKE, help={"lifetime": "ISAKMP/IKE SA lifetime"})
def no_lifetime(ctx: Context, args: Args) -> None:
    """Restore the default lifetime (28800 s)."""
    _edit(ctx, lifetime_seconds=_DEFAULT.lifetime_seconds)


@command(f"aggressive-mode {{{'|'.join(AGGRESSIVE_MODES)}}}=policy", modes=IKE)
def aggressive_mode(ctx: Context, args: Args) -> None:
    """Set the aggressive mode policy of this rule."""
    _edit(ctx, aggressive_mode=choice(args.text("policy"), AGGRESSIVE_MODES))


@command("no aggressive-mode", modes=IKE)
def no_aggressive_mode(ctx: Context, args: Args) -> None:
    """Restore the default aggressive mode policy (accepted)."""
    _edit(ctx, aggressive_mode=_DEFAULT.aggressive_mode)


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


@command("no {key|masked-key}", modes=KEY, help={"key": "Remove the pre-shared key"})
def no_key(ctx: Context, args: Args) -> None:
    """Remove the pre-shared key."""
    _set_secret(ctx, None)
