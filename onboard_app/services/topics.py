"""The topic list shared by the onboarding wizard (interests) and the explore catalogue."""

from __future__ import annotations

from typing import Final

#: Topic slug -> label, in the order the wizard shows them.
TOPICS: Final[dict[str, str]] = {
    "python": "Python",
    "javascript": "JavaScript & TypeScript",
    "rust": "Rust",
    "go": "Go",
    "web": "Web development",
    "frontend": "Frontend & UI",
    "data-science": "Data science",
    "machine-learning": "Machine learning & AI",
    "devops": "DevOps & infrastructure",
    "cloud": "Cloud",
    "security": "Security",
    "databases": "Databases",
    "mobile": "Mobile",
    "design": "Design & UX",
    "testing": "Testing & quality",
    "open-source": "Open source",
    "career": "Career & learning",
    "systems": "Systems programming",
}

#: Limits on how many interests a user picks during onboarding.
MIN_INTERESTS: Final = 3
MAX_INTERESTS: Final = 10


def topic_label(slug: str) -> str:
    """The display label of a topic slug (the slug itself if unknown)."""
    return TOPICS.get(slug, slug)
