from __future__ import annotations

from iamportal.text import one_line, unsafe_characters


def test_unsafe_characters_are_controls_and_invisible_formatting() -> None:
    text = "Acme\n\t\x00\u202e\u200b\u2028 Café \u2013 東京 🚀 \n"
    assert unsafe_characters(text) == ["\n", "\t", "\x00", "\u202e", "\u200b", "\u2028"]
    assert unsafe_characters("Café \u2013 東京 🚀 (R&D)") == []


def test_one_line_turns_unsafe_runs_into_single_spaces() -> None:
    assert one_line(" Acme\r\n\tEvil\u202e  Corp\u2028") == "Acme Evil Corp"
