"""``deepsad.validation.check_output_file``: the output-path check of ``score`` and ``export``."""

from __future__ import annotations

import os

import pytest

from deepsad.errors import InvalidInputError
from deepsad.validation import check_output_file, check_writable_directory


def test_a_writable_path_is_returned_and_nothing_is_left_behind(tmp_path):
    assert check_output_file(str(tmp_path / "scores.csv"), what="a CSV file") == tmp_path / "scores.csv"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_an_existing_file_may_be_replaced(tmp_path):
    (tmp_path / "old.csv").write_text("x")
    assert check_output_file(tmp_path / "old.csv", what="a CSV file") == tmp_path / "old.csv"


def test_a_directory_is_refused_naming_the_option_when_given(tmp_path):
    with pytest.raises(InvalidInputError, match=r"^--out .* is a directory; give the path of a CSV file to write$"):
        check_output_file(tmp_path, what="a CSV file", option="--out")
    with pytest.raises(InvalidInputError, match=r"^/.* is a directory; give the path of the .onnx file to write$"):
        check_output_file(tmp_path, what="the .onnx file")


def test_a_missing_folder_and_a_file_as_folder_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="the folder .*nowhere does not exist"):
        check_output_file(tmp_path / "nowhere" / "x.csv", what="a CSV file")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="notes.txt is a file, not a folder"):
        check_output_file(tmp_path / "notes.txt" / "x.csv", what="a CSV file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InvalidInputError, match=r"cannot write .*x.csv: .*read-only is not writable"):
            check_output_file(folder / "x.csv", what="a CSV file")
        with pytest.raises(InvalidInputError, match="cannot write the model: .*read-only is not writable"):
            check_writable_directory(folder, "the model")
    finally:
        folder.chmod(0o755)
