"""The onboarding step machine and the step validators (pure, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from onboard_app.services.onboarding import (
    MAX_BIO,
    MAX_NAME,
    STEP_TABLE,
    WIZARD_STEPS,
    Answers,
    Step,
    StepInputError,
    can_open,
    is_completed,
    next_step,
    parse_step,
    previous_step,
    reached_after_save,
    step_index,
    unanswered_steps,
    validate_interests,
    validate_preferences,
    validate_profile,
)
from onboard_app.services.topics import MAX_INTERESTS, MIN_INTERESTS, TOPICS

P, IN, PR, R, C = Step.PROFILE, Step.INTERESTS, Step.PREFERENCES, Step.REVIEW, Step.COMPLETED
ALL = (P, IN, PR, R, C)
SLUGS = list(TOPICS)

# --- step machine ---------------------------------------------------------------------------

#: reached -> the steps a user may open
OPENABLE = {
    P: {P},
    IN: {P, IN},
    PR: {P, IN, PR},
    R: {P, IN, PR, R},
    C: set(),
}


@pytest.mark.parametrize("reached", ALL)
@pytest.mark.parametrize("step", ALL)
def test_can_open_table(step: Step, reached: Step) -> None:
    assert can_open(step, reached) is (step in OPENABLE[reached])


#: (step saved, reached before) -> reached after
AFTER_SAVE = {
    (P, P): IN,
    (P, IN): IN,
    (P, PR): PR,
    (P, R): R,
    (IN, IN): PR,
    (IN, PR): PR,
    (IN, R): R,
    (PR, PR): R,
    (PR, R): R,
    (R, R): R,
}


@pytest.mark.parametrize(("saved", "reached"), list(AFTER_SAVE))
def test_reached_after_save_table(saved: Step, reached: Step) -> None:
    assert reached_after_save(saved, reached) is AFTER_SAVE[(saved, reached)]


@pytest.mark.parametrize("reached", WIZARD_STEPS)
@pytest.mark.parametrize("saved", WIZARD_STEPS)
def test_reached_after_save_never_completes_nor_goes_back(saved: Step, reached: Step) -> None:
    after = reached_after_save(saved, reached)
    assert after is not Step.COMPLETED
    assert step_index(after) >= step_index(reached)


def test_every_openable_pair_is_in_the_after_save_table() -> None:
    openable = {(s, r) for r in WIZARD_STEPS for s in WIZARD_STEPS if can_open(s, r)}
    assert openable == set(AFTER_SAVE)


def test_next_and_previous() -> None:
    assert [next_step(s) for s in ALL] == [IN, PR, R, C, C]
    assert [previous_step(s) for s in ALL] == [None, P, IN, PR, R]
    assert [step_index(s) for s in ALL] == [0, 1, 2, 3, 4]
    assert WIZARD_STEPS == (P, IN, PR, R)
    assert is_completed(C)
    assert not any(is_completed(s) for s in WIZARD_STEPS)


@pytest.mark.parametrize("step", ALL)
def test_parse_step_known(step: Step) -> None:
    assert parse_step(step.value) is step
    assert parse_step(step) is step


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "",
        " ",
        "PROFILE",
        "Profile",
        " profile",
        "profile ",
        "profile/",
        "admin",
        0,
        1,
        True,
        b"profile",
        ["profile"],
        {"step": "profile"},
        "profile\x00",
    ],
    ids=repr,
)
def test_parse_step_junk(junk: object) -> None:
    assert parse_step(junk) is None


def test_step_table_covers_wizard_steps() -> None:
    assert set(STEP_TABLE) == set(WIZARD_STEPS)
    assert all(spec.step is step for step, spec in STEP_TABLE.items())


# --- profile --------------------------------------------------------------------------------

GOOD_PROFILE = {"display_name": "Ada", "role": "developer", "bio": ""}


def profile_errors(**changes: Any) -> dict[str, str]:
    return validate_profile({**GOOD_PROFILE, **changes})[1]


def test_profile_valid_and_cleaned() -> None:
    clean, errors = validate_profile(
        {
            "display_name": " \t Ada    Lovelace\u00a0 ",
            "role": "data",
            "bio": "  line one\n\tline two  ",
        }
    )
    assert errors == {}
    assert clean == {
        "display_name": "Ada Lovelace",
        "role": "data",
        "bio": "line one\n\tline two",
    }


def test_profile_nfc() -> None:
    clean, errors = validate_profile({**GOOD_PROFILE, "display_name": "Zoe\u0308"})
    assert errors == {}
    assert clean["display_name"] == "Zo\u00eb"


def test_profile_missing_bio_is_fine() -> None:
    assert validate_profile({"display_name": "Ada", "role": "other"})[1] == {}
    assert profile_errors(bio=None) == {}


@pytest.mark.parametrize("name", ["", "   ", "\n\t "])
def test_profile_empty_name(name: str) -> None:
    assert profile_errors(display_name=name) == {"display_name": "Tell us what to call you."}


def test_profile_missing_name() -> None:
    errors = validate_profile({"role": "developer"})[1]
    assert errors == {"display_name": "Tell us what to call you."}


@pytest.mark.parametrize(
    "name",
    [
        None,
        5,
        ["Ada"],
        {"n": 1},
        "Ada\x00",
        "Ada\x07",
        "Ada\nLovelace",
        "Ada\tL",
        "A\x1b[31m",
        "A\x7f.",
    ],
)
def test_profile_name_not_text(name: object) -> None:
    assert profile_errors(display_name=name) == {
        "display_name": "Use letters, numbers and punctuation only."
    }


def test_profile_name_length_boundary() -> None:
    assert profile_errors(display_name="n" * MAX_NAME) == {}
    assert profile_errors(display_name="n" * (MAX_NAME + 1)) == {
        "display_name": f"Keep it under {MAX_NAME} characters."
    }
    # huge input is refused without being normalised (any display_name error)
    assert "display_name" in profile_errors(display_name="n" * 100_000)


@pytest.mark.parametrize("role", [None, "", "admin", "Developer", 1, "developer "])
def test_profile_bad_role(role: object) -> None:
    assert profile_errors(role=role) == {"role": "Pick the role that fits you best."}


@pytest.mark.parametrize("role", [["developer"], {"developer": 1}])
def test_profile_unhashable_role_is_a_field_error(role: object) -> None:
    assert profile_errors(role=role) == {"role": "Pick the role that fits you best."}


def test_profile_bio_length() -> None:
    assert profile_errors(bio="b" * MAX_BIO) == {}
    assert profile_errors(bio="b" * (MAX_BIO + 1)) == {
        "bio": f"Keep the bio under {MAX_BIO} characters ({MAX_BIO + 1} now)."
    }
    assert "bio" in profile_errors(bio="b" * 100_000)


@pytest.mark.parametrize("bio", ["bell\x07", "nul\x00", "esc\x1b", "c\rr", "del\x7f."])
def test_profile_bio_control_chars(bio: str) -> None:
    assert profile_errors(bio=bio) == {"bio": "The bio contains characters we cannot store."}


@pytest.mark.parametrize("bio", [5, ["x"], {"b": 1}])
def test_profile_bio_not_text(bio: object) -> None:
    assert profile_errors(bio=bio) == {"bio": "The bio contains characters we cannot store."}


def test_profile_all_errors_at_once() -> None:
    errors = validate_profile({"display_name": "", "role": "x", "bio": "\x00"})[1]
    assert set(errors) == {"display_name", "role", "bio"}


# --- interests ------------------------------------------------------------------------------


def interests_errors(value: Any) -> dict[str, str]:
    return validate_interests({"interests": value})[1]


def test_interests_boundaries() -> None:
    assert MIN_INTERESTS == 3 and MAX_INTERESTS == 10
    assert interests_errors(SLUGS[:3]) == {}
    assert interests_errors(SLUGS[:10]) == {}
    assert interests_errors(SLUGS[:2]) == {"interests": "Pick at least 3 topics (1 more topic)."}
    assert interests_errors(SLUGS[:1]) == {"interests": "Pick at least 3 topics (2 more topics)."}
    assert interests_errors([]) == {"interests": "Pick at least 3 topics (3 more topics)."}
    assert interests_errors(SLUGS[:11]) == {"interests": "Pick at most 10 topics (11 selected)."}
    assert interests_errors(SLUGS) == {
        "interests": f"Pick at most 10 topics ({len(SLUGS)} selected)."
    }


def test_interests_clean_in_catalogue_order() -> None:
    clean, errors = validate_interests({"interests": ("security", "python", "rust")})
    assert errors == {}
    assert clean == {"interests": ["python", "rust", "security"]}


@pytest.mark.parametrize(
    "value",
    [
        None,
        "python,rust,go",
        {"python", "rust", "go"},
        {"python": 1, "rust": 1, "go": 1},
        5,
        ["python", "rust", "go", "cobol"],
        ["python", "rust", "go", 1],
        ["python", "rust", "go", None],
        ["python", "rust", ["go"]],
        ["Python", "rust", "go"],
        ["python", "python", "rust", "go"],  # duplicates are refused, not merged
        SLUGS * 3,  # oversized list
    ],
    ids=lambda v: repr(v)[:30],
)
def test_interests_not_from_the_list(value: object) -> None:
    clean, errors = validate_interests({"interests": value})
    assert errors == {"interests": "Pick topics from the list."}
    assert clean == {"interests": []}


def test_interests_missing_field() -> None:
    assert validate_interests({})[1] == {"interests": "Pick topics from the list."}


# --- preferences ----------------------------------------------------------------------------

GOOD_PREFS = {"experience_level": "beginner", "email_digest": False, "theme": "system"}


def prefs(**changes: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return validate_preferences({**GOOD_PREFS, **changes})


def test_preferences_valid() -> None:
    assert prefs() == (GOOD_PREFS, {})
    assert prefs(email_digest="yes")[0]["email_digest"] is True
    assert prefs(email_digest="no")[0]["email_digest"] is False
    assert prefs(email_digest=True)[0]["email_digest"] is True


@pytest.mark.parametrize("digest", [None, "maybe", "YES", 1, 0, "true", [], "on"])
def test_preferences_bad_digest(digest: object) -> None:
    clean, errors = prefs(email_digest=digest)
    assert errors == {"email_digest": "Choose whether you want the weekly digest."}
    assert clean["email_digest"] is None


@pytest.mark.parametrize("level", [None, "", "expert", "Beginner", 3])
def test_preferences_bad_level(level: object) -> None:
    assert prefs(experience_level=level)[1] == {"experience_level": "Pick your experience level."}


@pytest.mark.parametrize("theme", [None, "", "neon", "Dark", 0])
def test_preferences_bad_theme(theme: object) -> None:
    assert prefs(theme=theme)[1] == {"theme": "Pick a theme."}


@pytest.mark.parametrize("field", ["experience_level", "theme"])
def test_preferences_unhashable_value_is_a_field_error(field: str) -> None:
    assert field in prefs(**{field: ["dark"]})[1]


def test_preferences_empty() -> None:
    assert set(validate_preferences({})[1]) == {"experience_level", "email_digest", "theme"}


def test_step_input_error_keeps_messages() -> None:
    error = StepInputError({"role": "Pick the role that fits you best.", "bio": "x"})
    assert error.errors == {"role": "Pick the role that fits you best.", "bio": "x"}
    assert "role: Pick the role" in str(error)


# --- unanswered_steps -----------------------------------------------------------------------


def full_answers() -> Answers:
    return Answers(
        display_name="Ada",
        role="developer",
        bio="",
        interests=["python", "rust", "go"],
        experience_level="advanced",
        email_digest=False,
        theme="light",
    )


def test_unanswered_steps() -> None:
    assert unanswered_steps(Answers()) == [P, IN, PR]
    assert unanswered_steps(full_answers()) == []
    answers = full_answers()
    answers.interests = ["python", "retired-topic", "go"]
    assert unanswered_steps(answers) == [IN]
    answers = full_answers()
    answers.email_digest = None
    assert unanswered_steps(answers) == [PR]
    answers = full_answers()
    answers.display_name = ""
    assert unanswered_steps(answers) == [P]
