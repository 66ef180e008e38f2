"""Edit distance and CER, shared by the speech/OCR/video benchmarks and the speech tests."""

from __future__ import annotations

from deepfolder.eval.text_metrics import char_error_rate, edit_distance


def test_edit_distance_on_characters_and_words() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["the", "cat", "sat"], ["the", "sat"]) == 1
    assert edit_distance("", "abc") == 3


def test_char_error_rate_ignores_punctuation_and_spaces() -> None:
    assert char_error_rate("欢迎大家，来体验！", "欢迎大家来体验") == 0.0
    assert char_error_rate("滨海新区", "冰台新区") == 0.5
    assert char_error_rate("", "x") == 1.0
