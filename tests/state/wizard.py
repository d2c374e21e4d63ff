"""Wizard steps driven through the real handlers, shared by the state and security tests."""

from __future__ import annotations

from onboard_app.state.onboarding import OnboardingState
from tests.state.harness import Client, redirects


async def fill_profile(
    tab: Client, name: str = "Grace Hopper", bio: str = "COBOL and compilers."
) -> list:
    """Open the profile step, type the answers, press Next."""
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    await tab.call(OnboardingState.set_field, "display_name", name)
    await tab.call(OnboardingState.set_field, "role", "developer")
    await tab.call(OnboardingState.set_field, "bio", bio)
    return await tab.call(OnboardingState.submit)


async def fill_interests(
    tab: Client, topics: tuple[str, ...] = ("python", "rust", "security")
) -> list:
    """Open the interests step, pick topics, press Next."""
    await tab.open("/onboarding/interests", OnboardingState.open_step)
    for topic in topics:
        await tab.call(OnboardingState.toggle_choice, "interests", topic)
    return await tab.call(OnboardingState.submit)


async def fill_preferences(tab: Client) -> list:
    """Open the preferences step, choose, press Next."""
    await tab.open("/onboarding/preferences", OnboardingState.open_step)
    await tab.call(OnboardingState.set_field, "experience_level", "advanced")
    await tab.call(OnboardingState.set_field, "email_digest", "yes")
    await tab.call(OnboardingState.set_field, "theme", "dark")
    return await tab.call(OnboardingState.submit)


async def reach_review(tab: Client) -> None:
    """Answer every step; the tab ends on the review step."""
    assert redirects(await fill_profile(tab)) == ["/onboarding/interests"]
    assert redirects(await fill_interests(tab)) == ["/onboarding/preferences"]
    assert redirects(await fill_preferences(tab)) == ["/onboarding/review"]
    await tab.open("/onboarding/review", OnboardingState.open_step)
