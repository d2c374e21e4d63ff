"""Onboard: sign-up, a resumable onboarding wizard and a server-side session re-mint."""
