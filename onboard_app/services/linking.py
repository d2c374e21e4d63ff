"""Account linking: the user of a provider identity, created on its first sign-in.

An identity is keyed on what the provider guarantees never to reassign: GitHub's numeric
user id, or the OpenID Connect (issuer, subject) pair. It is never linked to an existing
account by email address: a verified address that already belongs to another account
stops the sign-in (``email_taken``) instead of taking that account over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onboard_app.models import User
from onboard_app.services.oauth_errors import OAuthError
from onboard_app.services.users import EmailTaken, create_external_user, find_user_by_identity


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider says signed in.

    Attributes:
        provider: ``github`` or ``oidc``.
        github_id: GitHub's numeric user id.
        oidc_issuer: The OIDC issuer.
        oidc_subject: The OIDC ``sub``.
        email: A verified, normalised address, or ``None``.
        display_name: Name to prefill onboarding with.
        avatar_url: Avatar image URL, or ``None``.
        auth_time: OIDC: when the provider last saw the user log in (Unix time), if it
            said; ``None`` for GitHub, which never says.

    """

    provider: str
    github_id: int | None = None
    oidc_issuer: str | None = None
    oidc_subject: str | None = None
    email: str | None = None
    display_name: str = ""
    avatar_url: str | None = None
    auth_time: int | None = None


def sign_in_external(identity: ExternalIdentity, url: str | None = None) -> User:
    """Return the account of a provider identity, created on its first sign-in.

    Args:
        identity: What :func:`onboard_app.services.oauth.complete` returned.
        url: Database URL (default: configured).

    Returns:
        The user row.

    Raises:
        OAuthError: ``email_taken`` if another account uses the address,
            ``no_account_info`` if the identity has no key.

    """
    keys: dict[str, Any] = (
        {"github_id": identity.github_id}
        if identity.github_id is not None
        else {"oidc_issuer": identity.oidc_issuer, "oidc_subject": identity.oidc_subject}
    )
    if identity.github_id is None and not (identity.oidc_issuer and identity.oidc_subject):
        raise OAuthError("no_account_info")
    user = find_user_by_identity(**keys, url=url)
    if user is not None:
        return user
    try:
        return create_external_user(
            email=identity.email,
            display_name=identity.display_name,
            avatar_url=identity.avatar_url,
            **keys,
            url=url,
        )
    except EmailTaken:
        # Two callbacks of one new identity racing: the other one created the account.
        user = find_user_by_identity(**keys, url=url)
        if user is not None:
            return user
        raise OAuthError("email_taken") from None
