"""The onboarding step spec, the step machine built on it, and validation (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any

import pytest

from onboard_app.services import onboarding
from onboard_app.services.onboarding import (
    COMPLETED,
    MAX_BIO,
    MAX_NAME,
    REVIEW,
    Answers,
    Field,
    Kind,
    Step,
    StepInputError,
    StepSpec,
    blurb_of,
    can_open,
    field_of,
    fields_of,
    first_step,
    flow_version,
    is_answered,
    new_required_steps,
    next_step,
    parse_step,
    previous_step,
    reached_after_save,
    spec_of,
    step_index,
    steps,
    title_of,
    unanswered_steps,
    validate,
    validate_field,
    wizard_steps,
)
from onboard_app.services.topics import MAX_INTERESTS, MIN_INTERESTS, TOPICS
from tests.unit.flow_steps import CLEAN_WORKPLACE, GOOD, GOOD_WORKPLACE, NEWSLETTER, WORKPLACE

P, IN, PR, R, C = "profile", "interests", "preferences", REVIEW, COMPLETED
ALL = (P, IN, PR, R, C)
ASKING = (P, IN, PR)
SLUGS = list(TOPICS)


def answered(*keys: Step) -> Answers:
    """Stored answers in which exactly the steps ``keys`` are answered (well)."""
    values: dict[str, Any] = {}
    for key in keys:
        values.update(validate(key, GOOD[key])[0])
    return Answers(values)


# --- the spec -------------------------------------------------------------------------------


def test_the_shipped_flow() -> None:
    assert [spec.key for spec in steps()] == [P, IN, PR]
    assert wizard_steps() == (P, IN, PR, R)
    assert first_step() == P
    assert flow_version() == 1
    assert [fields_of(s) for s in ALL] == [
        ("display_name", "role", "bio"),
        ("interests",),
        ("experience_level", "email_digest", "theme"),
        (),
        (),
    ]
    assert [title_of(s) for s in wizard_steps()] == [
        "Your profile",
        "Your interests",
        "Preferences",
        "Review",
    ]
    assert (
        blurb_of(IN) == f"Pick {MIN_INTERESTS} to {MAX_INTERESTS} topics: explore ranks them first."
    )
    assert blurb_of(R) == "Check your answers, then finish to open Onboard."
    assert not any(spec.optional for spec in steps())


def test_field_names_are_unique_across_steps() -> None:
    names = [f.name for spec in steps() for f in spec.fields]
    assert len(names) == len(set(names))
    assert all(field_of(name) is not None for name in names)


@pytest.mark.parametrize("key", [R, C, "bogus", "", None, 1, "PROFILE"], ids=repr)
def test_spec_of_non_asking_steps_is_none(key: object) -> None:
    assert spec_of(key) is None


def test_spec_and_field_lookups() -> None:
    spec = spec_of(IN)
    assert spec is not None and spec.key == IN
    role = field_of("role")
    assert role is not None and role.kind is Kind.SINGLE_CHOICE and role.required
    assert field_of("bio") is not None and not field_of("bio").required  # type: ignore[union-attr]
    assert field_of("is_admin") is None
    assert field_of(["role"]) is None


def test_empty_values_by_kind() -> None:
    assert Field("a", "A", Kind.TEXT).empty == ""
    assert Field("a", "A", Kind.LONG_TEXT).empty == ""
    assert Field("a", "A", Kind.SINGLE_CHOICE).empty is None
    assert Field("a", "A", Kind.YES_NO).empty is None
    assert Field("a", "A", Kind.MULTIPLE_CHOICE).empty == []


def test_display_of_each_kind() -> None:
    colours = {"r": "Red", "g": "Green", "b": "Blue"}
    many = Field("c", "Colours", Kind.MULTIPLE_CHOICE, options=colours)
    one = Field("c", "Colour", Kind.SINGLE_CHOICE, options=colours)
    yes_no = Field("d", "Digest", Kind.YES_NO, options={"yes": "Send it", "no": "Never"})
    plain_yes_no = Field("d", "Digest", Kind.YES_NO)
    text = Field("t", "Text", Kind.TEXT)
    assert many.display(["r", "b"]) == "Red, Blue"
    assert one.display("g") == "Green"
    assert one.display("gone") == "gone"  # a retired option still reads as itself
    assert (yes_no.display(True), yes_no.display(False)) == ("Send it", "Never")
    assert (plain_yes_no.display(True), plain_yes_no.display(False)) == ("Yes", "No")
    assert text.display("Ada") == "Ada"
    empty: tuple[Any, ...] = (None, "", [])
    for field in (many, one, yes_no, text):
        for value in empty:
            assert field.display(value) == "Not answered"


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


@pytest.mark.parametrize("reached", ALL)
@pytest.mark.parametrize("step", ["bogus", "", "PROFILE", "profile/"])
def test_can_open_unknown_step_never(step: Step, reached: Step) -> None:
    assert can_open(step, reached) is False


#: (reached before, steps answered after the save) -> reached after
AFTER_SAVE = {
    (P, ()): P,  # nothing valid stored: stays
    (P, (P,)): IN,
    (IN, (P,)): IN,  # profile re-saved
    (PR, (P,)): PR,  # never backwards
    (R, (P,)): R,
    (IN, (P, IN)): PR,
    (P, (P, IN)): PR,  # later steps already answered (e.g. kept) are skipped over
    (PR, (P, IN)): PR,
    (R, (P, IN)): R,
    (PR, (P, IN, PR)): R,
    (IN, (P, IN, PR)): R,
    (R, (P, IN, PR)): R,
    (P, (IN, PR)): P,  # the first unanswered step is the profile
}


@pytest.mark.parametrize(("reached", "keys"), list(AFTER_SAVE))
def test_reached_after_save_table(reached: Step, keys: tuple[Step, ...]) -> None:
    assert reached_after_save(reached, answered(*keys)) == AFTER_SAVE[(reached, keys)]


SUBSETS = [keys for n in range(len(ASKING) + 1) for keys in combinations(ASKING, n)]


@pytest.mark.parametrize("keys", SUBSETS, ids=repr)
@pytest.mark.parametrize("reached", wizard_steps())
def test_reached_after_save_is_the_first_unanswered_step_never_back_never_completed(
    reached: Step, keys: tuple[Step, ...]
) -> None:
    after = reached_after_save(reached, answered(*keys))
    assert after != C
    assert step_index(after) >= step_index(reached)
    if after != reached:
        # it only moves to the first step still to answer (review once none is left)
        assert all(s in keys for s in wizard_steps()[: step_index(after)])
        assert after == R or after not in keys


def test_next_and_previous() -> None:
    assert [next_step(s) for s in ALL] == [IN, PR, R, C, C]
    # completed is no wizard page: there is nothing "before" it to go back to
    assert [previous_step(s) for s in ALL] == [None, P, IN, PR, None]
    assert [step_index(s) for s in ALL] == [0, 1, 2, 3, 4]
    assert step_index("bogus") == step_index(C)


@pytest.mark.parametrize("step", ALL)
def test_parse_step_known(step: Step) -> None:
    assert parse_step(step) == step


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
        "workplace",  # a step of a flow not deployed
    ],
    ids=repr,
)
def test_parse_step_junk(junk: object) -> None:
    assert parse_step(junk) is None


# --- profile --------------------------------------------------------------------------------

GOOD_PROFILE = {"display_name": "Ada", "role": "developer", "bio": ""}


def profile_errors(**changes: Any) -> dict[str, str]:
    return validate(P, {**GOOD_PROFILE, **changes})[1]


def test_profile_valid_and_cleaned() -> None:
    clean, errors = validate(
        P,
        {
            "display_name": " \t Ada    Lovelace\u00a0 ",
            "role": "data",
            "bio": "  line one\n\tline two  ",
        },
    )
    assert errors == {}
    assert clean == {
        "display_name": "Ada Lovelace",
        "role": "data",
        "bio": "line one\n\tline two",
    }


def test_profile_nfc() -> None:
    clean, errors = validate(P, {**GOOD_PROFILE, "display_name": "Zoe\u0308"})
    assert errors == {}
    assert clean["display_name"] == "Zo\u00eb"


def test_profile_missing_bio_is_fine() -> None:
    assert validate(P, {"display_name": "Ada", "role": "other"}) == (
        {"display_name": "Ada", "role": "other", "bio": ""},
        {},
    )
    assert profile_errors(bio=None) == {}


@pytest.mark.parametrize("name", ["", "   ", "\n\t ", None])
def test_profile_empty_name(name: str | None) -> None:
    # a JSON null is "not given", like an empty box (it used to read as "not text")
    assert profile_errors(display_name=name) == {"display_name": "Tell us what to call you."}


def test_profile_missing_name() -> None:
    errors = validate(P, {"role": "developer"})[1]
    assert errors == {"display_name": "Tell us what to call you."}


@pytest.mark.parametrize(
    "name",
    [
        5,
        ["Ada"],
        {"n": 1},
        "Ada\x00",
        "Ada\x07",
        "Ada\nLovelace",
        "Ada\tL",
        "A\x1b[31m",
        "A\x7f.",
        "Ada\ud800",
    ],
)
def test_profile_name_not_text(name: object) -> None:
    assert profile_errors(display_name=name) == {
        "display_name": "Use letters, numbers and punctuation only."
    }


def test_profile_name_length_boundary() -> None:
    assert profile_errors(display_name="n" * MAX_NAME) == {}
    assert profile_errors(display_name="n" * (MAX_NAME + 1)) == {
        "display_name": f"Keep it under {MAX_NAME} characters ({MAX_NAME + 1} now)."
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
        "bio": f"Keep it under {MAX_BIO} characters ({MAX_BIO + 1} now)."
    }
    assert "bio" in profile_errors(bio="b" * 100_000)


@pytest.mark.parametrize("bio", ["bell\x07", "nul\x00", "esc\x1b", "c\rr", "del\x7f.", "\udc00"])
def test_profile_bio_control_chars(bio: str) -> None:
    assert profile_errors(bio=bio) == {"bio": "Use letters, numbers and punctuation only."}


@pytest.mark.parametrize("bio", [5, ["x"], {"b": 1}])
def test_profile_bio_not_text(bio: object) -> None:
    assert profile_errors(bio=bio) == {"bio": "Use letters, numbers and punctuation only."}


def test_profile_all_errors_at_once() -> None:
    errors = validate(P, {"display_name": "", "role": "x", "bio": "\x00"})[1]
    assert set(errors) == {"display_name", "role", "bio"}


def test_fields_of_other_steps_and_unknown_fields_are_ignored() -> None:
    clean, errors = validate(P, {**GOOD_PROFILE, "theme": "dark", "is_admin": True})
    assert errors == {}
    assert clean == {"display_name": "Ada", "role": "developer", "bio": ""}


@pytest.mark.parametrize("step", [R, C, "bogus"])
def test_steps_without_questions_validate_to_nothing(step: Step) -> None:
    assert validate(step, {"display_name": "Ada", "is_admin": True}) == ({}, {})


# --- interests ------------------------------------------------------------------------------


def interests_errors(value: Any) -> dict[str, str]:
    return validate(IN, {"interests": value})[1]


def test_interests_boundaries() -> None:
    assert MIN_INTERESTS == 3 and MAX_INTERESTS == 10
    assert interests_errors(SLUGS[:3]) == {}
    assert interests_errors(SLUGS[:10]) == {}
    assert interests_errors(SLUGS[:2]) == {"interests": "Pick at least 3 topics (1 more)."}
    assert interests_errors(SLUGS[:1]) == {"interests": "Pick at least 3 topics (2 more)."}
    assert interests_errors([]) == {"interests": "Pick at least 3 topics (3 more)."}
    assert interests_errors(SLUGS[:11]) == {"interests": "Pick at most 10 topics (11 selected)."}
    assert interests_errors(SLUGS) == {
        "interests": f"Pick at most 10 topics ({len(SLUGS)} selected)."
    }


def test_interests_clean_in_catalogue_order() -> None:
    clean, errors = validate(IN, {"interests": ("security", "python", "rust")})
    assert errors == {}
    assert clean == {"interests": ["python", "rust", "security"]}


@pytest.mark.parametrize(
    "value",
    [
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
    clean, errors = validate(IN, {"interests": value})
    assert errors == {"interests": "Pick topics from the list."}
    assert clean == {"interests": []}


@pytest.mark.parametrize("data", [{}, {"interests": None}], ids=repr)
def test_interests_missing_is_none_picked(data: dict[str, Any]) -> None:
    # not given is "nothing picked yet" (it used to read as "not from the list")
    assert validate(IN, data) == (
        {"interests": []},
        {"interests": "Pick at least 3 topics (3 more)."},
    )


# --- preferences ----------------------------------------------------------------------------

GOOD_PREFS = {"experience_level": "beginner", "email_digest": False, "theme": "system"}


def prefs(**changes: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return validate(PR, {**GOOD_PREFS, **changes})


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
    assert set(validate(PR, {})[1]) == {"experience_level", "email_digest", "theme"}


def test_step_input_error_keeps_messages() -> None:
    error = StepInputError({"role": "Pick the role that fits you best.", "bio": "x"})
    assert error.errors == {"role": "Pick the role that fits you best.", "bio": "x"}
    assert "role: Pick the role" in str(error)


# --- each kind, as the spec declares it -----------------------------------------------------

COLOURS = {"r": "Red", "g": "Green", "b": "Blue", "k": "Black"}


def check(field: Field, raw: Any) -> tuple[Any, str | None]:
    return validate_field(field, raw)


def test_text_kind() -> None:
    name = Field("nick", "Nickname", Kind.TEXT, max_chars=5)
    assert check(name, "  a   b ") == ("a b", None)
    assert check(name, "abcde") == ("abcde", None)
    assert check(name, "abcdef") == ("abcdef", "Keep it under 5 characters (6 now).")
    assert check(name, "a\nb") == ("", "Use letters, numbers and punctuation only.")
    assert check(name, 7) == ("", "Use letters, numbers and punctuation only.")
    assert check(name, "") == ("", "Fill in nickname.")
    assert check(name, None) == ("", "Fill in nickname.")
    worded = Field("nick", "Nickname", Kind.TEXT, missing="Pick a nickname.")
    assert check(worded, " ") == ("", "Pick a nickname.")


def test_long_text_kind() -> None:
    about = Field("about", "About", Kind.LONG_TEXT, max_chars=20)
    assert check(about, " one\n\ttwo ") == ("one\n\ttwo", None)
    assert check(about, "a\rb") == ("", "Use letters, numbers and punctuation only.")
    assert check(about, "x" * 21) == ("x" * 21, "Keep it under 20 characters (21 now).")
    assert check(about, "") == ("", "Fill in about.")


def test_single_choice_kind() -> None:
    colour = Field("colour", "Colour", Kind.SINGLE_CHOICE, options=COLOURS)
    assert check(colour, "g") == ("g", None)
    assert check(colour, "Green") == (None, "Choose colour from the list.")
    assert check(colour, ["g"]) == (None, "Choose colour from the list.")
    assert check(colour, None) == (None, "Choose colour.")
    assert check(colour, "") == (None, "Choose colour.")
    worded = Field("colour", "Colour", Kind.SINGLE_CHOICE, options=COLOURS, missing="Pick one.")
    assert check(worded, "pink") == (None, "Pick one.")
    assert check(worded, None) == (None, "Pick one.")


def test_multiple_choice_kind_with_min_and_max() -> None:
    colours = Field(
        "colours", "Colours", Kind.MULTIPLE_CHOICE, options=COLOURS, min_choices=2, max_choices=3
    )
    assert check(colours, ["k", "r"]) == (["r", "k"], None)  # the spec's order
    assert check(colours, ["r", "g", "b"]) == (["r", "g", "b"], None)
    assert check(colours, ["r"]) == (["r"], "Pick at least 2 colours (1 more).")
    assert check(colours, []) == ([], "Pick at least 2 colours (2 more).")
    assert check(colours, None) == ([], "Pick at least 2 colours (2 more).")
    assert check(colours, list(COLOURS)) == (
        ["r", "g", "b", "k"],
        "Pick at most 3 colours (4 selected).",
    )
    for bad in (["r", "r"], ["r", "pink"], "r,g", ["r", 1], ["r"] * 9):
        assert check(colours, bad) == ([], "Pick colours from the list."), bad
    unlimited = Field("colours", "Colours", Kind.MULTIPLE_CHOICE, options=COLOURS)
    assert check(unlimited, list(COLOURS)) == (list(COLOURS), None)


def test_multiple_choice_left_empty_says_the_fields_missing_message() -> None:
    """``Field.missing`` is "the message when a required field is left empty", every kind."""
    colours = Field(
        "colours", "Colours", Kind.MULTIPLE_CHOICE, options=COLOURS, missing="Pick your colours."
    )
    assert check(colours, []) == ([], "Pick your colours.")
    assert check(colours, None) == ([], "Pick your colours.")
    # one picked of two needed is not "left empty": the count message stays
    two = replace(colours, min_choices=2)
    assert check(two, ["r"]) == (["r"], "Pick at least 2 colours (1 more).")


def test_yes_no_kind() -> None:
    digest = Field("digest", "Digest", Kind.YES_NO)
    assert check(digest, "yes") == (True, None)
    assert check(digest, "no") == (False, None)
    assert check(digest, True) == (True, None)
    assert check(digest, False) == (False, None)
    junk_values: tuple[Any, ...] = (None, "", "Yes", 1, 0, [], "maybe")
    for junk in junk_values:
        assert check(digest, junk) == (None, "Choose digest."), junk


def test_optional_fields_of_each_kind_may_stay_empty() -> None:
    for kind in Kind:
        field = Field("f", "F", kind, options=COLOURS, required=False, min_choices=2)
        assert check(field, None) == (field.empty, None), kind
    # but what is given must still be valid
    many = Field(
        "f", "Colours", Kind.MULTIPLE_CHOICE, options=COLOURS, required=False, min_choices=2
    )
    assert check(many, ["r"]) == (["r"], "Pick at least 2 colours (1 more).")
    one = Field("f", "Colour", Kind.SINGLE_CHOICE, options=COLOURS, required=False)
    assert check(one, "pink") == (None, "Choose colour from the list.")
    text = Field("f", "Text", Kind.TEXT, required=False)
    assert check(text, "a\x00") == ("", "Use letters, numbers and punctuation only.")


def test_custom_check_runs_on_clean_non_empty_values_only() -> None:
    seen: list[Any] = []

    def no_admins(value: Any) -> str | None:
        seen.append(value)
        return "That name is taken." if value.lower() == "admin" else None

    handle = Field("handle", "Handle", Kind.TEXT, max_chars=10, check=no_admins)
    assert check(handle, "  ADMIN ") == ("ADMIN", "That name is taken.")
    assert check(handle, "ada") == ("ada", None)
    assert seen == ["ADMIN", "ada"]  # given the clean value
    assert check(handle, "") == ("", "Fill in handle.")
    assert check(handle, "x" * 11)[1] == "Keep it under 10 characters (11 now)."
    assert check(handle, "a\x00")[1] == "Use letters, numbers and punctuation only."
    assert seen == ["ADMIN", "ada"]  # never for a missing or refused value
    optional = Field("handle", "Handle", Kind.TEXT, required=False, check=no_admins)
    assert check(optional, "") == ("", None)
    assert seen == ["ADMIN", "ada"]


# --- answers, unanswered_steps --------------------------------------------------------------


def full_answers() -> Answers:
    return answered(P, IN, PR)


def test_answers_get() -> None:
    answers = Answers({"role": "data", "bio": None, "interests": None})
    assert answers.get("role") == "data"
    assert answers.get("bio") == ""  # a stored NULL reads as the field's empty value
    assert answers.get("interests") == []
    assert answers.get("display_name") == ""  # never stored
    assert answers.get("email_digest") is None
    assert answers.get("not_a_field") is None
    assert Answers().skipped == frozenset()


def test_unanswered_steps() -> None:
    assert unanswered_steps(Answers()) == [P, IN, PR]
    assert unanswered_steps(full_answers()) == []
    answers = full_answers()
    answers.values["interests"] = ["python", "retired-topic", "go"]
    assert unanswered_steps(answers) == [IN]
    answers = full_answers()
    answers.values["email_digest"] = None
    assert unanswered_steps(answers) == [PR]
    answers = full_answers()
    answers.values["display_name"] = ""
    assert unanswered_steps(answers) == [P]
    assert unanswered_steps(Answers(), since=1) == []
    # a required step cannot be answered by "skipping" it
    assert unanswered_steps(Answers(full_answers().values, frozenset({PR}))) == []
    assert unanswered_steps(Answers(answered(P, IN).values, frozenset({PR}))) == [PR]


def test_new_required_steps_of_the_shipped_flow() -> None:
    assert [s.key for s in new_required_steps(0)] == [P, IN, PR]
    assert new_required_steps(1) == []


# --- optional steps -------------------------------------------------------------------------


def test_an_optional_step_counts_as_answered_when_skipped(with_optional_step: StepSpec) -> None:
    key = with_optional_step.key
    assert wizard_steps() == (P, IN, PR, key, R)
    assert flow_version() == 1
    assert unanswered_steps(full_answers()) == [key]
    skipped = Answers(full_answers().values, frozenset({key}))
    assert is_answered(with_optional_step, skipped)
    assert unanswered_steps(skipped) == []
    assert reached_after_save(key, skipped) == R
    assert reached_after_save(PR, full_answers()) == key  # not skipped: it is asked
    # answered instead of skipped: just as good
    given = Answers({**full_answers().values, "frequency": "weekly"})
    assert is_answered(with_optional_step, given)
    # and an optional step is never "required since" any version
    assert [s.key for s in new_required_steps(0)] == [P, IN, PR]


# --- a step added through the spec alone ----------------------------------------------------


def test_a_step_added_to_the_spec_is_part_of_the_flow(flow_v2: StepSpec) -> None:
    assert onboarding.STEPS[-1] is WORKPLACE is flow_v2
    assert wizard_steps() == (P, IN, PR, "workplace", R)
    assert flow_version() == 2
    assert parse_step("workplace") == "workplace"
    assert next_step(PR) == "workplace" and next_step("workplace") == R
    assert previous_step(R) == "workplace"
    assert title_of("workplace") == "Your workplace"
    assert blurb_of("workplace") == "Where you build things."
    assert fields_of("workplace") == ("company", "team_size", "remote", "stack", "notes")
    assert can_open("workplace", R) and not can_open("workplace", PR)
    assert [s.key for s in new_required_steps(1)] == ["workplace"]
    assert new_required_steps(2) == []


def test_a_step_added_to_the_spec_is_validated(flow_v2: StepSpec) -> None:
    assert validate("workplace", GOOD_WORKPLACE) == (CLEAN_WORKPLACE, {})
    clean, errors = validate("workplace", {"company": "Acme", "stack": ["rs"], "remote": "?"})
    assert errors == {
        "company": "Acme is not hiring.",
        "team_size": "How big is your team?",
        "remote": "Choose remote.",
        "stack": "Pick at least 2 stack (1 more).",
    }
    assert clean["notes"] == ""  # optional


def test_a_step_added_to_the_spec_is_required_since_its_version(flow_v2: StepSpec) -> None:
    assert unanswered_steps(full_answers()) == ["workplace"]
    assert unanswered_steps(full_answers(), since=1) == ["workplace"]
    assert unanswered_steps(Answers(), since=1) == ["workplace"]
    done = Answers({**full_answers().values, **CLEAN_WORKPLACE})
    assert unanswered_steps(done) == []
    # a required step cannot be skipped into being answered
    assert unanswered_steps(Answers(full_answers().values, frozenset({"workplace"}))) == [
        "workplace"
    ]
    # a user sent back to it moves on to the review once it is saved
    assert reached_after_save("workplace", done) == R
    assert reached_after_save(R, full_answers()) == R


def test_spec_lookups_of_the_unpatched_flow_do_not_know_added_steps() -> None:
    assert spec_of(WORKPLACE.key) is None
    assert spec_of(NEWSLETTER.key) is None
    assert field_of("company") is None
    assert validate("workplace", GOOD_WORKPLACE) == ({}, {})
