"""``paperfeed user ...``: create accounts (the first admin), change roles, ban and unban.

Run by the operator on the server; actions taken here are recorded in the audit log as "cli".
The password is prompted for (twice, hidden) or read from the first line of stdin with
``--password-stdin`` (for scripts); it never appears on the command line.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from paperfeed.cli.common import database, fail, out, settings
from paperfeed.community import accounts, moderation
from paperfeed.community.core import COMMAND_LINE, ROLES, Community
from paperfeed.community.errors import CommunityError

user_app = typer.Typer(help="Accounts: create users, set roles, ban.", no_args_is_help=True)


def _community() -> Community:
    s = settings()
    return Community(settings=s, db=database(s))


@user_app.command("create")
def create(
    name: str = typer.Argument(..., help="The username (3-30 letters, digits, - or _)."),
    email: str | None = typer.Option(None, "--email", help="Email address (needed for password resets)."),
    admin: bool = typer.Option(False, "--admin", help="Make the account an admin."),
    role: str = typer.Option("user", "--role", help=f"Role: {', '.join(ROLES)} (--admin wins)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create an account; the first admin is made with ``--admin``."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    c = _community()
    try:
        user = accounts.create_account(c, name, email, password, role="admin" if admin else role)
    except CommunityError as exc:
        raise fail(exc.message) from None
    out.print(f"created user [bold]{escape(user.username)}[/bold] (id {user.id}, role {user.role})")


@user_app.command("role")
def role(
    name: str = typer.Argument(...),
    new_role: str = typer.Argument(..., metavar="ROLE", help=", ".join(ROLES)),
) -> None:
    """Change a user's role."""
    try:
        changed = moderation.set_role(_community(), COMMAND_LINE, name, new_role)
    except CommunityError as exc:
        raise fail(exc.message) from None
    out.print(f"{name} is now {new_role}" if changed else f"{name} already was {new_role}")


@user_app.command("ban")
def ban(
    name: str = typer.Argument(...),
    reason: str = typer.Option("", "--reason", help="Kept in the audit log."),
) -> None:
    """Ban a user: every session and API token stops working at once."""
    try:
        changed = moderation.set_banned(_community(), COMMAND_LINE, name, True, reason)
    except CommunityError as exc:
        raise fail(exc.message) from None
    out.print(f"banned {name}" if changed else f"{name} already was banned")


@user_app.command("unban")
def unban(name: str = typer.Argument(...)) -> None:
    """Lift a ban."""
    try:
        changed = moderation.set_banned(_community(), COMMAND_LINE, name, False, None)
    except CommunityError as exc:
        raise fail(exc.message) from None
    out.print(f"unbanned {name}" if changed else f"{name} was not banned")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
