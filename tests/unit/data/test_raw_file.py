"""``deepsad.data.raw_file.read_raw_file``: a data file's bytes, or a one-line DataFileError."""

from __future__ import annotations

import pytest

from deepsad.data.raw_file import read_raw_file
from deepsad.errors import DataFileError


def test_the_bytes_are_returned(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\x00\x01")
    assert read_raw_file(tmp_path / "f.bin", "IDX file") == b"\x00\x01"


def test_a_missing_file_is_named_by_what_it_is(tmp_path):
    with pytest.raises(DataFileError, match=r"^CIFAR-10 batch not found: .*data_batch_1$"):
        read_raw_file(tmp_path / "data_batch_1", "CIFAR-10 batch")


def test_a_folder_cannot_be_read(tmp_path):
    with pytest.raises(DataFileError, match=r"^cannot read .*: "):
        read_raw_file(tmp_path, "IDX file")
